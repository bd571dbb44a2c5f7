"""Reading a KServe InferenceService, and the JSON merge patches written into it. Pure."""
from __future__ import annotations

import copy
from typing import Any

VERSION_LABEL = "serving.modelrollout.io/version"
STORAGE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"   # KServe stamps it on every revision
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"   # KServe then tags the latest revision's target


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


def predictor(isvc: dict) -> dict:
    return (isvc.get("spec") or {}).get("predictor") or {}


def template_uri(isvc: dict) -> str:
    """The storageUri of the predictor's template: what KServe's next revision runs."""
    return (predictor(isvc).get("model") or {}).get("storageUri") or ""


def status(isvc: dict) -> dict:
    """KServe's status. Its observedGeneration is the Knative Service's (or Deployment's), not the
    InferenceService's, so what it describes is checked against the revisions themselves."""
    return isvc.get("status") or {}


def predictor_status(isvc: dict) -> dict:
    return ((status(isvc).get("components") or {}).get("predictor")) or {}


def model_of(revision: dict | None) -> str | None:
    """The storageUri a Knative revision runs, as KServe stamped it."""
    return (((revision or {}).get("metadata") or {}).get("annotations") or {}).get(STORAGE_URI)


def serving(isvc: dict) -> tuple[str, str]:
    """Both modes keep stable in the main predictor: its version is the label, else the URI's last segment."""
    uri = template_uri(isvc)
    version = ((isvc.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL) or uri.rstrip("/").rsplit("/", 1)[-1]
    return version, uri


def revisions_taking_traffic(isvc: dict) -> list[str]:
    return [t["revisionName"] for t in predictor_status(isvc).get("traffic") or []
            if t.get("percent") and t.get("revisionName")]


def served_uris(isvc: dict, revisions: dict[str, dict]) -> dict[str, int] | None:
    """{storageUri: percent} of the Knative revisions KServe's status says take traffic, read from
    the model URI KServe stamps on each revision; None until every such revision is known."""
    out: dict[str, int] = {}
    for target in predictor_status(isvc).get("traffic") or []:
        if not target.get("percent"):
            continue
        uri = model_of(revisions.get(target.get("revisionName", "")))
        if not uri:
            return None
        out[uri] = out.get(uri, 0) + int(target["percent"])
    return out or None
