"""Reading a KServe InferenceService, and the JSON merge patches written into it. Pure."""

from __future__ import annotations

import copy
from typing import Any

from ..builds import STORAGE_URI, Build, of_revision  # noqa: F401 (STORAGE_URI: read here by tests and bench)

VERSION_LABEL = "serving.modelrollout.io/version"
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"  # KServe then tags the latest revision's target


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


def serving(isvc: dict) -> tuple[str, str]:
    """Both modes keep stable in the main predictor: its version is the label, else the URI's last segment."""
    uri = template_uri(isvc)
    version = ((isvc.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL) or uri.rstrip("/").rsplit("/", 1)[-1]
    return version, uri


def revisions_taking_traffic(isvc: dict) -> list[str]:
    return [t["revisionName"] for t in predictor_status(isvc).get("traffic") or [] if t.get("percent") and t.get("revisionName")]


def served(isvc: dict, revisions: dict[str, dict]) -> list[tuple[Build, int]] | None:
    """[(what runs, percent)] of the Knative revisions KServe's status says take traffic, read from
    each revision (builds.of_revision); None until every such revision is known."""
    out: list[tuple[Build, int]] = []
    for target in predictor_status(isvc).get("traffic") or []:
        if not target.get("percent"):
            continue
        build = of_revision(revisions.get(target.get("revisionName", "")))
        if build is None:
            return None
        out.append((build, int(target["percent"])))
    return out or None


def all_to(split: list[tuple[Build, int]] | None, build: Build) -> bool:
    """Every share of `split` goes to a revision running `build`."""
    return split is not None and all(build.matches(b) for b, percent in split if percent)


def shown(split: list[tuple[Build, int]]) -> str:
    return ", ".join(f"{percent}% to {build.describe()}" for build, percent in split)
