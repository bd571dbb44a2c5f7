"""The Kubernetes API as the reconciler uses it: ModelRollouts (and their status), InferenceServices,
and Events. A thin layer over the official client; every write is a JSON merge patch.

Status writes and InferenceService patches carry the resourceVersion that was read, so a write
based on a stale read (another replica, a concurrent edit) gets 409 Conflict (raised as Conflict)
instead of overwriting newer state. Other refusals of an InferenceService patch (webhooks,
admission policies, RBAC) are raised as RoutingError with the apiserver's message.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from typing import Any, Mapping

import kubernetes
from kubernetes.client.rest import ApiException

from ..ownership import FIELD_MANAGER
from ..planner import Event

GROUP, VERSION, PLURAL = "serving.modelrollout.io", "v1alpha1", "modelrollouts"
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
HTTPROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")
REVISION = ("serving.knative.dev", "v1", "revisions")
COMPONENT = "serving.modelrollout.io/operator"


class Conflict(Exception):
    """The object changed since it was read; read again and re-plan."""


class NotFound(Exception):
    pass


class RoutingError(Exception):
    """The apiserver (or an admission webhook or policy) refused an InferenceService patch."""


class ConfigMapError(Exception):
    """The apiserver refused a ConfigMap write (the mirror's file)."""


def _api_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body or "{}").get("message") or exc.reason
    except ValueError:
        return exc.reason


# (connect, read) seconds: the client's default is to wait for ever, and a reconcile stuck in a
# call would hold its rollout's lock, so no later event or resync could reconcile it.
REQUEST_TIMEOUT = (5, 30)


def _call(fn, *args, **kwargs) -> Any:
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        if exc.status == 409:
            raise Conflict(exc.reason) from None
        if exc.status == 404:
            raise NotFound(f"{args[-1] if args else ''}: not found") from None
        raise


class KubeApi:
    def __init__(self, client: kubernetes.client.ApiClient):
        self.objects = kubernetes.client.CustomObjectsApi(client)
        self.events = kubernetes.client.EventsV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)

    @classmethod
    def from_environment(cls) -> "KubeApi":
        """In-cluster service account, else $KUBECONFIG / ~/.kube/config."""
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        return cls(kubernetes.client.ApiClient())

    def get_rollout(self, namespace: str, name: str) -> dict:
        return _call(self.objects.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)

    def write_status(self, rollout: dict, status: Mapping[str, Any]) -> dict:
        meta = rollout["metadata"]
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": status}
        return _call(self.objects.patch_namespaced_custom_object_status, GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], body)

    def get_isvc(self, namespace: str, name: str) -> dict:
        return _call(self.objects.get_namespaced_custom_object, *ISVC[:2], namespace, ISVC[2], name)

    def get_revision(self, namespace: str, name: str) -> dict:
        return _call(self.objects.get_namespaced_custom_object, *REVISION[:2], namespace, REVISION[2], name)

    def get_httproute(self, namespace: str, name: str) -> dict:
        return _call(self.objects.get_namespaced_custom_object, *HTTPROUTE[:2], namespace, HTTPROUTE[2], name)

    def get_config_map(self, namespace: str, name: str) -> dict:
        """A ConfigMap's data (the evaluation step's holdout, a Prometheus CA)."""
        return _call(self.core.read_namespaced_config_map, name, namespace).data or {}

    def set_config_map_key(self, namespace: str, name: str, key: str, value: str | None) -> None:
        """One key of a ConfigMap others' keys share (the mirror's: one per InferenceService), set
        or, with None, removed; the ConfigMap is created at its first key."""
        try:
            try:
                _call(self.core.patch_namespaced_config_map, name, namespace, {"data": {key: value}}, field_manager=FIELD_MANAGER)
            except NotFound:
                if value is None:
                    return
                body = kubernetes.client.V1ConfigMap(
                    metadata=kubernetes.client.V1ObjectMeta(name=name, namespace=namespace, labels={"app.kubernetes.io/managed-by": "modelrollout"}),
                    data={key: value},
                )
                _call(self.core.create_namespaced_config_map, namespace, body, field_manager=FIELD_MANAGER)
        except (ApiException, Conflict) as exc:
            detail = f"{exc.status} {exc.reason}: {_api_message(exc)}" if isinstance(exc, ApiException) else str(exc)
            raise ConfigMapError(detail) from None

    def get_secret(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's data, decoded (a Prometheus token or CA)."""
        data = _call(self.core.read_namespaced_secret, name, namespace).data or {}
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}

    def patch_isvc(self, namespace: str, name: str, patch: dict) -> dict:
        try:
            return _call(self.objects.patch_namespaced_custom_object, *ISVC[:2], namespace, ISVC[2], name, patch, field_manager=FIELD_MANAGER)
        except ApiException as exc:
            raise RoutingError(f"{exc.status} {exc.reason}: {_api_message(exc)}") from None

    def emit(self, rollout: dict, event: Event) -> None:
        """An events.k8s.io/v1 Event about the rollout (what `kubectl get events` and `describe` show)."""
        meta = rollout["metadata"]
        body = kubernetes.client.EventsV1Event(
            metadata=kubernetes.client.V1ObjectMeta(name=f"{meta['name']}.{uuid.uuid4().hex[:12]}", namespace=meta["namespace"]),
            regarding=kubernetes.client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind="ModelRollout",
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            type=event.type,
            reason=event.reason,
            note=event.message[:1024],
            action=event.reason,
            event_time=dt.datetime.now(dt.timezone.utc),
            reporting_controller=COMPONENT,
            reporting_instance=COMPONENT,
        )
        _call(self.events.create_namespaced_event, meta["namespace"], body)
