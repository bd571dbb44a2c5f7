"""How a rollout's traffic and capacity are written into a KServe InferenceService.

A Router turns the planned Traffic (and each side's Scale) into a JSON merge patch of the
InferenceService, and reads back what it serves. Two implementations:

- ServerlessRouter: `spec.predictor.canaryTrafficPercent`. KServe sends that share to the latest
  revision (the predictor's current storageUri) and the rest to the last revision that was rolled
  out at 100%. A rollback pins the old revision: canaryTrafficPercent 0 with the stable storageUri,
  as KServe's docs roll back. The predictor's replicas apply to the latest revision, the canary.
- StandardRouter: `spec.canary[]` (raw deployment, routed by KServe through the Gateway API), in
  the shape of KServe's V1beta1CanarySpec: `{trafficPercent, predictor}`, where the canary's
  predictor needs a `name` (its Deployment is `{isvc}-{name}-predictor`). The main predictor keeps
  the stable model and its full capacity; one entry carries the candidate, named after its
  version, with its share and replicas (trafficPercent 0 is KServe's dark launch: deployed, no
  traffic). Promotion follows KServe's advice: the main predictor takes the canary's name (so
  the canary's Deployment becomes stable's without a restart) and the entry goes.

The routers are pure; kube.KubeApi applies their patches.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Protocol

from ..planner import Traffic
from .autoscaling import Scale

STABLE_VERSION = "serving.modelrollout.io/stable-version"
CANARY_VERSION = "serving.modelrollout.io/canary-version"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge, None deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _combine(a: dict, b: dict) -> dict:
    """Two patches as one (unlike merge_patch, keeps the Nones that delete fields)."""
    out = dict(a)
    for key, value in b.items():
        out[key] = _combine(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def _uri(isvc: dict) -> str:
    return ((((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri")) or ""


def _annotations(traffic: Traffic) -> dict:
    return {"metadata": {"annotations": {STABLE_VERSION: traffic.stable_version, CANARY_VERSION: traffic.canary_version}}}


class Router(Protocol):
    def serving(self, isvc: dict) -> tuple[str, str]:
        """(version, storageUri) the InferenceService serves as stable."""

    def canary_weight(self, isvc: dict) -> int:
        """The canary's current traffic share."""

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale, canary: Scale | None, warm: bool = False) -> dict:
        """The merge patch that makes the InferenceService `isvc` route `traffic` with these capacities.
        warm: the canary is being given capacity before a higher weight, so keep it deployed even at 0%."""


class _Serving:
    """Both modes keep stable in the main predictor, so they read what serves stable alike."""

    def serving(self, isvc: dict) -> tuple[str, str]:
        uri = _uri(isvc)
        meta = isvc.get("metadata") or {}
        version = (meta.get("annotations") or {}).get(STABLE_VERSION) or (meta.get("labels") or {}).get(
            "serving.modelrollout.io/version") or uri.rstrip("/").rsplit("/", 1)[-1]
        return version, uri


class ServerlessRouter(_Serving):
    mode = "serverless"

    def canary_weight(self, isvc: dict) -> int:
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        pct = predictor.get("canaryTrafficPercent")
        canary = ((isvc.get("metadata") or {}).get("annotations") or {}).get(CANARY_VERSION)
        return int(pct) if pct is not None and canary else 0

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale, canary: Scale | None, warm: bool = False) -> dict:
        if traffic.canary_version and (traffic.canary_weight > 0 or warm):
            predictor = {"canaryTrafficPercent": traffic.canary_weight, "model": {"storageUri": traffic.canary_uri},
                         **(canary or stable).fields()}
        elif traffic.canary_version:       # rolled back: the last rolled-out revision keeps all traffic
            predictor = {"canaryTrafficPercent": 0, "model": {"storageUri": traffic.stable_uri}, **stable.fields()}
        else:
            predictor = {"canaryTrafficPercent": None, "model": {"storageUri": traffic.stable_uri}, **stable.fields()}
        return _combine(_annotations(traffic), {"spec": {"predictor": predictor}})


def predictor_name(version: str) -> str:
    """A version as a DNS label, for the canary predictor's name."""
    name = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")[:40]
    return name or "canary"


class StandardRouter(_Serving):
    mode = "standard"

    def canary_weight(self, isvc: dict) -> int:
        return sum(int(c.get("trafficPercent") or 0) for c in (isvc.get("spec") or {}).get("canary") or [])

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale, canary: Scale | None, warm: bool = False) -> dict:
        spec = isvc.get("spec") or {}
        model = {k: v for k, v in ((spec.get("predictor") or {}).get("model") or {}).items() if k != "storageUri"}
        entries = None
        if traffic.canary_version and (traffic.canary_weight > 0 or warm):
            entries = [{"trafficPercent": traffic.canary_weight, "predictor": {
                "name": predictor_name(traffic.canary_version), "model": {**model, "storageUri": traffic.canary_uri},
                **(canary.fields() if canary else {})}}]
        predictor = {"model": {"storageUri": traffic.stable_uri}, **stable.fields()}
        if not traffic.canary_version:         # promoted: the main predictor takes over the canary's Deployment
            for entry in spec.get("canary") or []:
                if ((entry.get("predictor") or {}).get("model") or {}).get("storageUri") == traffic.stable_uri:
                    predictor["name"] = entry["predictor"]["name"]
        return _combine(_annotations(traffic), {"spec": {"predictor": predictor, "canary": entries}})


ROUTERS: dict[str, Router] = {"serverless": ServerlessRouter(), "standard": StandardRouter()}
