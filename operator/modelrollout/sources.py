"""Where a rollout's measurements come from, as typed values: which series (spec.analysis.metrics:
a provider) and how to reach the Prometheus that holds them (spec.analysis.prometheus:
authorization, TLS, headers). Refused with a message naming the field, as in spec.py.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from .fields import LABEL as _LABEL, SpecError

PROVIDERS = ("modelrollout", "knative", "custom")
# what a custom template may name; {{revision}} is a regex alternation (use it with =~)
PLACEHOLDERS = ("namespace", "inferenceService", "model", "version", "revision", "window")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_RATE = re.compile(r"\b(rate|irate|increase|delta|idelta)\s*\(")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an HTTP token (RFC 9110)
RESERVED_HEADERS = ("authorization", "host", "content-length")


@dataclasses.dataclass(frozen=True)
class CustomQueries:
    requests: str
    errors: str
    latency: str | None = None  # a histogram's _bucket series; None: no latency gates


@dataclasses.dataclass(frozen=True)
class MetricsSpec:
    provider: str = "modelrollout"
    revision_label: str = "serving_knative_dev_revision"  # knative: the label the scrape gives the pod's revision
    custom: CustomQueries | None = None

    @property
    def has_latency(self) -> bool:
        return self.custom is None or self.custom.latency is not None

    @property
    def has_predictions(self) -> bool:
        return self.provider == "modelrollout"


@dataclasses.dataclass(frozen=True)
class KeyRef:
    """One key of a Secret or ConfigMap in the rollout's namespace."""

    kind: str  # Secret | ConfigMap
    name: str
    key: str


@dataclasses.dataclass(frozen=True)
class PrometheusAccess:
    """How to be let in: an Authorization header from a Secret, a CA to trust, fixed headers
    (X-Scope-OrgID for Mimir, Cortex and Thanos tenants)."""

    scheme: str = "Bearer"
    credentials: KeyRef | None = None
    ca: KeyRef | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _key_ref(raw: Any, where: str, kinds: tuple[str, ...]) -> KeyRef:
    """{name, key} (a Secret), or {secret: {name, key}} / {configMap: {name, key}} where both may hold it."""
    if isinstance(raw, Mapping) and len(kinds) > 1:
        given = [k for k in ("secret", "configMap") if k in raw]
        if len(given) != 1:
            raise SpecError(f"{where}: expected one of secret or configMap, such as {{configMap: {{name: prometheus-ca, key: ca.crt}}}}")
        kind, raw = ("Secret" if given[0] == "secret" else "ConfigMap"), raw[given[0]]
        where = f"{where}.{given[0]}"
    else:
        kind = kinds[0]
    if not isinstance(raw, Mapping) or not all(isinstance(raw.get(k), str) and raw.get(k) for k in ("name", "key")):
        raise SpecError(f"{where}: expected {{name, key}} of a {kind} in the rollout's namespace")
    return KeyRef(kind, raw["name"], raw["key"])


def parse_access(prometheus: Mapping[str, Any]) -> PrometheusAccess:
    where = "spec.analysis.prometheus"
    auth = prometheus.get("authorization")
    scheme, credentials = "Bearer", None
    if auth is not None:
        if not isinstance(auth, Mapping) or "credentials" not in auth:
            raise SpecError(f"{where}.authorization: expected {{credentials: {{name, key}}}} of a Secret holding the token")
        scheme = str(auth.get("type") or "Bearer")
        if not _HEADER.match(scheme):
            raise SpecError(f"{where}.authorization.type: {scheme!r} is not an HTTP authorization scheme such as Bearer")
        credentials = _key_ref(auth["credentials"], f"{where}.authorization.credentials", ("Secret",))
    tls = prometheus.get("tlsConfig") or {}
    if not isinstance(tls, Mapping):
        raise SpecError(f"{where}.tlsConfig: expected a mapping such as {{ca: {{configMap: {{name, key}}}}}}")
    ca = _key_ref(tls["ca"], f"{where}.tlsConfig.ca", ("Secret", "ConfigMap")) if tls.get("ca") is not None else None
    headers = prometheus.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise SpecError(f"{where}.headers: expected a mapping of header names to values, such as {{X-Scope-OrgID: team-a}}")
    for name, value in headers.items():
        if not _HEADER.match(str(name)) or not isinstance(value, str) or "\n" in value or "\r" in value:
            raise SpecError(f"{where}.headers: {name!r}: {value!r} is not a header name and one-line value")
        if str(name).lower() in RESERVED_HEADERS:
            raise SpecError(f"{where}.headers: {name!r} is set by the operator (use authorization for a token)")
    return PrometheusAccess(scheme, credentials, ca, tuple(sorted(headers.items())))


def _template(raw: Mapping, key: str, where: str, mode: str, required: bool) -> str | None:
    text = raw.get(key)
    if text is None and not required:
        return None
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where}.{key}: a PromQL expression is required")
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            raise SpecError(f"{where}.{key}: unknown placeholder {{{{{name}}}}}; known: {', '.join(PLACEHOLDERS)}")
        if name == "revision" and mode != "serverless":
            raise SpecError(f"{where}.{key}: {{{{revision}}}} names Knative revisions, which only trafficMode serverless has")
    if _RATE.search(text):
        raise SpecError(
            f"{where}.{key}: give the cumulative counter itself, not rate() or increase() of it: the operator reads its increments per scrape"
        )
    return text


def parse_metrics(raw: Any, mode: str, drift: bool, p99_limit: bool) -> MetricsSpec:
    where = "spec.analysis.metrics"
    if raw is None:
        return MetricsSpec()
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping such as {{provider: knative}}")
    name = raw.get("provider", "modelrollout")
    if name not in PROVIDERS:
        raise SpecError(f"{where}.provider: must be one of {', '.join(PROVIDERS)}, got {name!r}")
    label = raw.get("revisionLabel", MetricsSpec.revision_label)
    if not isinstance(label, str) or not _LABEL.match(label):
        raise SpecError(f"{where}.revisionLabel: {label!r} is not a Prometheus label name")
    if name == "knative" and mode != "serverless":
        raise SpecError(f"{where}.provider: knative reads the queue-proxy of Knative revisions, which only trafficMode serverless has")
    custom = None
    if name == "custom":
        queries = raw.get("queries")
        if not isinstance(queries, Mapping):
            raise SpecError(f"{where}.queries: provider custom needs requests and errors (and optionally latency) PromQL")
        w = f"{where}.queries"
        custom = CustomQueries(
            _template(queries, "requests", w, mode, True) or "",
            _template(queries, "errors", w, mode, True) or "",
            _template(queries, "latency", w, mode, False),
        )
    elif raw.get("queries") is not None:
        raise SpecError(f"{where}.queries: only provider custom takes queries")
    spec = MetricsSpec(str(name), label, custom)
    if drift and not spec.has_predictions:
        raise SpecError("spec.analysis.predictionDrift: needs predictor_predictions_total, which only provider modelrollout reads")
    if p99_limit and not spec.has_latency:
        raise SpecError(f"spec.analysis.maxLatencyP99: provider custom has no latency query ({where}.queries.latency)")
    return spec
