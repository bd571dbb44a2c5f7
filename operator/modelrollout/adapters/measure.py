"""The reconciler's Measure: a rollout's spec -> what Prometheus holds of its canary and stable,
read through the spec's provider (providers.py), by a client let in as spec.analysis.prometheus
says: an Authorization header from a Secret, a CA from a Secret or ConfigMap, fixed headers.
A Secret or key that is not there is an Error verdict naming it (counted like Prometheus down)."""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

from ..analysis import Measurements, Window
from ..sources import KeyRef, PrometheusAccess
from ..spec import RolloutSpec
from .kube import NotFound
from .prometheus import PrometheusClient, PrometheusError, PrometheusSource
from .providers import Target, provider

Read = Callable[[str, str], Mapping[str, str]]  # (namespace, name) -> data


class AccessError(Exception):
    pass


def _value(ref: KeyRef, namespace: str, read: dict[str, Read]) -> str:
    try:
        data = read[ref.kind](namespace, ref.name)
    except NotFound:
        raise AccessError(f"{ref.kind} {namespace}/{ref.name} not found") from None
    if ref.key not in data:
        raise AccessError(f"{ref.kind} {namespace}/{ref.name} has no key {ref.key!r}")
    return data[ref.key]


def client_for(url: str, access: PrometheusAccess, namespace: str, read: dict[str, Read]) -> PrometheusClient:
    headers = dict(access.headers)
    if access.credentials is not None:
        headers["Authorization"] = f"{access.scheme} {_value(access.credentials, namespace, read).strip()}"
    ca = _value(access.ca, namespace, read) if access.ca is not None else None
    return PrometheusClient(url, headers=headers, ca_pem=ca)


def rollout_client(spec: RolloutSpec, namespace: str, read_secret: Read, read_config_map: Read) -> tuple[PrometheusClient | None, str | None]:
    """(the client spec.analysis.prometheus describes, None; or None, why it cannot be made): a
    Secret or key that is not there is an error naming it."""
    a = spec.analysis
    try:
        return client_for(a.prometheus_url, a.access, namespace, {"Secret": read_secret, "ConfigMap": read_config_map}), None
    except (AccessError, PrometheusError) as exc:
        return None, f"cannot reach Prometheus as spec.analysis.prometheus says: {exc}"


def scope_of(spec: RolloutSpec, namespace: str) -> tuple[tuple[str, str], ...]:
    """The label matchers that make series this rollout's: its namespace's, and the selector's."""
    a = spec.analysis
    return (((a.namespace_label, namespace),) if a.namespace_label else ()) + a.selector


@dataclasses.dataclass
class PrometheusMeasure:
    """read_secret, read_config_map: (namespace, name) -> data (KubeApi.get_secret, get_config_map)."""

    read_secret: Read
    read_config_map: Read

    def __call__(
        self,
        spec: RolloutSpec,
        canary: str,
        stable: str | None,
        window: Window,
        namespace: str,
        revisions: Mapping[str, tuple[str, ...]] | None = None,
    ) -> Measurements:
        """stable None: the canary alone; revisions: version -> the Knative revisions that run it (serverless)."""
        a, revisions, scope = spec.analysis, revisions or {}, scope_of(spec, namespace)

        def target(version: str) -> Target:
            return Target(namespace, spec.inference_service, spec.model_name, version, revisions.get(version, ()))

        client, error = rollout_client(spec, namespace, self.read_secret, self.read_config_map)
        if client is None:
            return Measurements(None, None, error=error)
        source = PrometheusSource(client, provider(a.metrics), a.scrape_interval)
        return source.measure(target(canary), None if stable is None else target(stable), window, scope)
