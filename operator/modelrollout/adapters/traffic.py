"""How a rollout's traffic is written into a KServe InferenceService.

A Router turns the planned Traffic into a JSON merge patch of the InferenceService, and reads
back what it serves. Bookkeeping lives in the ModelRollout's status, never in the
InferenceService's annotations: KServe copies those into revision and pod templates, so each
write would start new pods. Two implementations:

- ServerlessRouter: `spec.predictor.canaryTrafficPercent`. KServe sends that share to the latest
  Knative revision (the predictor's current template) and the rest to the revision it last rolled
  out at 100%. The template is written once per rollout (candidate storageUri, the stable's
  autoscaling, so the candidate is sized for the 100% it may get), and never again until the next
  rollout: a step changes only the percentage. A rollback or cancel sets `canaryTrafficPercent: 0`
  and leaves the template alone, which is how KServe rolls back (a template change would be a new
  revision, and KServe would route the rest to the candidate if it had been rolled out).
  Promotion removes the field: the candidate's revision, already ready and full-sized, takes all.
- StandardRouter: `spec.canary[]` (raw deployment; KServe splits on Gateway API HTTPRoutes), in
  the shape KServe's webhook accepts: `{trafficPercent, predictor: {name, model}}` with no
  autoscaling fields (KServe runs a canary at fixed replicas, ceil(stable minReplicas x weight),
  taken from stable's once it is ready) and a name that is a DNS label starting with a letter. Promotion follows KServe's
  advice: the main predictor takes the canary's name, so the canary's Deployment becomes stable's.

The routers are pure; kube.KubeApi applies their patches.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Protocol

from ..planner import Traffic
from .autoscaling import Scale

VERSION_LABEL = "serving.modelrollout.io/version"
STORAGE_URI = "internal.serving.kserve.io/storage-initializer-sourceuri"   # KServe stamps it on every revision
TAG_ROUTING = "serving.kserve.io/enable-tag-routing"   # KServe then tags the latest revision's target
ISVC_NAME_BUDGET = 63 - 11   # KServe names a canary's objects {isvc}-{name}-predictor... within a DNS label


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


def _predictor(isvc: dict) -> dict:
    return (isvc.get("spec") or {}).get("predictor") or {}


def _uri(isvc: dict) -> str:
    return (_predictor(isvc).get("model") or {}).get("storageUri") or ""


class Router(Protocol):
    def serving(self, isvc: dict) -> tuple[str, str]:
        """(version, storageUri) the InferenceService serves as stable, for a first look."""

    def canary_weight(self, isvc: dict) -> int:
        """The canary's current traffic share."""

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale) -> dict:
        """The merge patch that makes the InferenceService `isvc` route `traffic`."""

    def pending(self, isvc: dict, traffic: Traffic, observed: dict) -> str | None:
        """None once KServe serves the canary's weight from a ready canary running its model; else
        what is missing. observed: the objects observe() named, by name (None if absent)."""

    def observe(self, isvc: dict) -> list[tuple[str, str]]:
        """(kind, name) of the platform objects pending() needs: "revision" or "httproute"."""

    def addresses(self, isvc: dict, traffic: Traffic, observed: dict) -> tuple[dict[str, str] | None, str]:
        """({"candidate": url, "stable": url}, "") once each version has a ready address of its own
        for the evaluation step (the candidate at 0%), else (None, what is missing)."""


def _status(isvc: dict) -> dict:
    """KServe's status. Its observedGeneration is the Knative Service's (or Deployment's), not the
    InferenceService's, so what it describes is checked against the revisions themselves."""
    return isvc.get("status") or {}


def _predictor_status(isvc: dict) -> dict:
    return ((_status(isvc).get("components") or {}).get("predictor")) or {}


def _model_of(revision: dict | None) -> str | None:
    return (((revision or {}).get("metadata") or {}).get("annotations") or {}).get(STORAGE_URI)


def _serving(isvc: dict) -> tuple[str, str]:
    """Both modes keep stable in the main predictor: its version is the label, else the URI's last segment."""
    uri = _uri(isvc)
    version = ((isvc.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL) or uri.rstrip("/").rsplit("/", 1)[-1]
    return version, uri


class ServerlessRouter:
    mode = "serverless"
    serving = staticmethod(_serving)

    def canary_weight(self, isvc: dict) -> int:
        return int(_predictor(isvc).get("canaryTrafficPercent") or 0)

    def observe(self, isvc: dict) -> list[tuple[str, str]]:
        predictor = _predictor_status(isvc)
        names = [predictor.get("latestCreatedRevision")] + [t.get("revisionName") for t in predictor.get("traffic") or []
                                                             if t.get("tag") == "prev"]
        return [("revision", name) for name in dict.fromkeys(names) if name]

    def addresses(self, isvc: dict, traffic: Traffic, observed: dict) -> tuple[dict[str, str] | None, str]:
        """KServe tags the traffic target of the latest revision `latest` (with the annotation
        serving.kserve.io/enable-tag-routing) and the last rolled-out one `prev`; Knative gives each
        tag a URL of its own. Ready when `latest` resolves to the latest created revision (Knative
        keeps a tag on the last ready one until then) running the candidate, and `prev` runs stable."""
        if _uri(isvc) != traffic.canary_uri:
            return None, "the InferenceService does not hold the candidate yet"
        predictor = _predictor_status(isvc)
        created = predictor.get("latestCreatedRevision")
        tagged = {t.get("tag"): t for t in predictor.get("traffic") or [] if t.get("tag")}
        latest, prev = tagged.get("latest") or {}, tagged.get("prev") or {}
        if not latest.get("url"):
            return None, (f"KServe's status has no address for the latest revision: the InferenceService needs the "
                          f"annotation {TAG_ROUTING}: \"true\"")
        if latest.get("revisionName") != created:
            return None, f"the candidate's revision {created} is not ready"
        if _model_of(observed.get(("revision", created))) != traffic.canary_uri:
            return None, f"revision {created} does not run {traffic.canary_uri} (KServe has not caught up yet)"
        if not prev.get("url"):
            return None, "KServe's status has no address for the revision it last rolled out (tag prev) yet"
        if _model_of(observed.get(("revision", prev.get("revisionName")))) != traffic.stable_uri:
            return None, f"revision {prev.get('revisionName')}, which KServe tags prev, does not run {traffic.stable_uri}"
        return {"candidate": latest["url"], "stable": prev["url"]}, ""

    def pending(self, isvc: dict, traffic: Traffic, observed: dict) -> str | None:
        """Served when the traffic target KServe marks latestRevision carries the weight, Knative
        resolved it to the latest created revision (so it is ready: until then Knative keeps that
        share on the previous ready revision), and that revision runs the candidate's model."""
        if _uri(isvc) != traffic.canary_uri:
            return "the InferenceService does not hold the candidate yet"
        predictor = _predictor_status(isvc)
        created = predictor.get("latestCreatedRevision")
        latest = [t for t in predictor.get("traffic") or [] if t.get("latestRevision")]
        if not latest or latest[0].get("percent") != traffic.canary_weight:
            return f"KServe's status does not show {traffic.canary_weight}% on the latest revision yet"
        if latest[0].get("revisionName") != created:
            return f"the candidate's revision {created} is not ready"
        if _model_of(observed.get(("revision", created))) != traffic.canary_uri:
            return f"revision {created} does not run {traffic.canary_uri} (KServe has not caught up yet)"
        return None

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale) -> dict:
        current = _predictor(isvc)
        if traffic.canary_version and (traffic.canary_weight > 0 or traffic.evaluating):
            predictor = {"canaryTrafficPercent": traffic.canary_weight,
                         "model": {"storageUri": traffic.canary_uri}, **stable.fields()}
        elif _uri(isvc) != traffic.stable_uri and "canaryTrafficPercent" in current:
            # the template holds a rejected or cancelled candidate: keep it at 0%, template untouched,
            # so KServe keeps routing to the revision it last rolled out, which is stable
            predictor = {"canaryTrafficPercent": 0}
        else:                               # stable is the template (promoted, or idle): no canary at all
            predictor = {"canaryTrafficPercent": None, "model": {"storageUri": traffic.stable_uri}, **stable.fields()}
        return {"spec": {"predictor": predictor}}


def revisions_taking_traffic(isvc: dict) -> list[str]:
    predictor = _predictor_status(isvc)
    return [t["revisionName"] for t in predictor.get("traffic") or [] if t.get("percent") and t.get("revisionName")]


def served_uris(isvc: dict, revisions: dict[str, dict]) -> dict[str, int] | None:
    """{storageUri: percent} of the Knative revisions KServe's status says take traffic, read from
    the model URI KServe stamps on each revision; None until every such revision is known."""
    predictor = _predictor_status(isvc)
    out: dict[str, int] = {}
    for target in predictor.get("traffic") or []:
        if not target.get("percent"):
            continue
        uri = _model_of(revisions.get(target.get("revisionName", "")))
        if not uri:
            return None
        out[uri] = out.get(uri, 0) + int(target["percent"])
    return out or None


def predictor_name(isvc_name: str, version: str) -> str:
    """A version as the canary predictor's name: a DNS label that starts with a letter and leaves
    room for KServe's `{isvc}-{name}-predictor` object names."""
    name = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")
    if not name[:1].isalpha():
        name = f"v-{name}".rstrip("-")
    return name[:max(1, ISVC_NAME_BUDGET - len(isvc_name))].rstrip("-")


class StandardRouter:
    mode = "standard"
    serving = staticmethod(_serving)

    def canary_weight(self, isvc: dict) -> int:
        return sum(int(c.get("trafficPercent") or 0) for c in (isvc.get("spec") or {}).get("canary") or [])

    def observe(self, isvc: dict) -> list[tuple[str, str]]:
        return [("httproute", (isvc.get("metadata") or {}).get("name", ""))]

    def addresses(self, isvc: dict, traffic: Traffic, observed: dict) -> tuple[dict[str, str] | None, str]:
        # spec.py refuses evaluation in standard mode: KServe runs no pods for a canary at 0%
        return None, "standard mode cannot evaluate a candidate before traffic"

    def pending(self, isvc: dict, traffic: Traffic, observed: dict) -> str | None:
        """Served when KServe reports the canary ready at its weight (status.canaryStatuses) and
        its HTTPRoute sends that share to the canary's Service: KServe splits only there."""
        isvc_name = (isvc.get("metadata") or {}).get("name", "")
        route = observed.get(("httproute", isvc_name))
        name = predictor_name(isvc_name, traffic.canary_version or "")
        if not any(c.get("name") == name and c.get("ready") is True and c.get("trafficPercent") == traffic.canary_weight
                   for c in _status(isvc).get("canaryStatuses") or []):
            return f"KServe does not report canary {name!r} ready at {traffic.canary_weight}% yet"
        if route is None:
            return (f"no HTTPRoute {isvc_name!r}: KServe splits standard-mode traffic only on Gateway API "
                    "HTTPRoutes (enable them in KServe's ingress config)")
        refs = ((route.get("spec") or {}).get("rules") or [{}])[0].get("backendRefs") or []
        total = sum(int(r.get("weight", 1)) for r in refs) or 1
        share = sum(round(100 * int(r.get("weight", 1)) / total) for r in refs
                    if r.get("name") == f"{isvc_name}-{name}-predictor")
        if share != traffic.canary_weight:
            return (f"HTTPRoute {isvc_name!r} sends {share}% to the canary's Service, not {traffic.canary_weight}%: "
                    "this KServe does not split standard-mode traffic (its Gateway API canary weights need a later release)")
        return None

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale) -> dict:
        spec = isvc.get("spec") or {}
        model = {k: v for k, v in (_predictor(isvc).get("model") or {}).items() if k != "storageUri"}
        entries = None
        if traffic.canary_version and traffic.canary_weight > 0:
            name = predictor_name((isvc.get("metadata") or {}).get("name", ""), traffic.canary_version)
            # no replicas: KServe sizes a canary at ceil(stable minReplicas x weight) and takes as
            # many from stable once it is ready; an explicit minReplicas would be taken whole
            canary = {"name": name, "model": {**model, "storageUri": traffic.canary_uri}}
            entries = [{"trafficPercent": traffic.canary_weight, "predictor": canary}]
        predictor = {"model": {"storageUri": traffic.stable_uri}, **stable.fields()}
        if not traffic.canary_version:         # promoted: the main predictor takes over the canary's Deployment
            for entry in spec.get("canary") or []:
                if ((entry.get("predictor") or {}).get("model") or {}).get("storageUri") == traffic.stable_uri:
                    predictor["name"] = entry["predictor"]["name"]
        return {"spec": {"predictor": predictor, "canary": entries}}


ROUTERS: dict[str, Router] = {"serverless": ServerlessRouter(), "standard": StandardRouter()}
