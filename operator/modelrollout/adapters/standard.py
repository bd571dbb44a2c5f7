"""Standard mode: traffic through `spec.canary[]` (raw deployment; KServe splits on Gateway API
HTTPRoutes), in the shape KServe's webhook accepts: `{trafficPercent, predictor: {name, model}}`
with no autoscaling fields (KServe runs a canary at fixed replicas, ceil(stable minReplicas x
weight), taken from stable's once it is ready) and a name that is a DNS label starting with a
letter. Stable stays the main predictor, so going back to it is removing the entry. Promotion
follows KServe's advice: the main predictor takes the canary's name, so the canary's Deployment
becomes stable's. Pure.
"""

from __future__ import annotations

import re

from ..builds import Build, Runtime, of_template
from ..planner import Traffic
from .autoscaling import Scale
from .isvc import predictor, serving, status
from .serverless import template

ISVC_NAME_BUDGET = 63 - 11  # KServe names a canary's objects {isvc}-{name}-predictor... within a DNS label


def predictor_name(isvc_name: str, version: str) -> str:
    """A version as the canary predictor's name: a DNS label that starts with a letter and leaves
    room for KServe's `{isvc}-{name}-predictor` object names."""
    name = re.sub(r"[^a-z0-9-]+", "-", version.lower()).strip("-")
    if not name[:1].isalpha():
        name = f"v-{name}".rstrip("-")
    return name[: max(1, ISVC_NAME_BUDGET - len(isvc_name))].rstrip("-")


class StandardRouter:
    mode = "standard"
    serving = staticmethod(serving)

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
        if not any(
            c.get("name") == name and c.get("ready") is True and c.get("trafficPercent") == traffic.canary_weight
            for c in status(isvc).get("canaryStatuses") or []
        ):
            return f"KServe does not report canary {name!r} ready at {traffic.canary_weight}% yet"
        if route is None:
            return (
                f"no HTTPRoute {isvc_name!r}: KServe splits standard-mode traffic only on Gateway API "
                "HTTPRoutes (enable them in KServe's ingress config)"
            )
        refs = ((route.get("spec") or {}).get("rules") or [{}])[0].get("backendRefs") or []
        total = sum(int(r.get("weight", 1)) for r in refs) or 1
        share = sum(round(100 * int(r.get("weight", 1)) / total) for r in refs if r.get("name") == f"{isvc_name}-{name}-predictor")
        if share != traffic.canary_weight:
            return (
                f"HTTPRoute {isvc_name!r} sends {share}% to the canary's Service, not {traffic.canary_weight}%: "
                "this KServe does not split standard-mode traffic (its Gateway API canary weights need a later release)"
            )
        return None

    def next_split(self, isvc: dict, observed: dict) -> list[tuple[Build, int]] | None:
        return None  # not read: the serving check is serverless mode's

    def revisions(self, isvc: dict, observed: dict) -> list[tuple[str, Build]]:
        return []  # raw deployments: no Knative revisions

    def blocked(self, isvc: dict, stable: Build, observed: dict) -> str | None:
        return None  # stable is the main predictor: what the canary does not take goes to it

    def stable_runtime(self, isvc: dict, observed: dict) -> Runtime | None:
        """The main predictor's runtime fields (what a Deployment runs is not compared); None while
        a canary entry is in the spec."""
        if (isvc.get("spec") or {}).get("canary"):
            return None
        return of_template(predictor(isvc).get("model") or {})

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale, observed: dict) -> dict:
        spec, isvc_name = isvc.get("spec") or {}, (isvc.get("metadata") or {}).get("name", "")
        model = {k: v for k, v in (predictor(isvc).get("model") or {}).items() if k not in ("storageUri", "runtimeVersion")}
        entries = None
        if traffic.canary_version and traffic.canary_uri and traffic.canary_weight > 0:
            # no replicas: KServe sizes a canary at ceil(stable minReplicas x weight) and takes as
            # many from stable once it is ready; an explicit minReplicas would be taken whole
            fields = {**model, **_whole(isvc, traffic.canary_uri, traffic.canary_runtime)}
            canary = {"name": predictor_name(isvc_name, traffic.canary_version), "model": fields}
            entries = [{"trafficPercent": traffic.canary_weight, "predictor": canary}]
        main = {"model": template(isvc, traffic.stable_uri, traffic.stable_runtime), **stable.fields()}
        if not traffic.canary_version:  # promoted: the main predictor takes over the canary's Deployment
            for entry in spec.get("canary") or []:
                if (entry.get("predictor") or {}).get("name") == predictor_name(isvc_name, traffic.stable_version):
                    main["name"] = entry["predictor"]["name"]
        return {"spec": {"predictor": main, "canary": entries}}


def _whole(isvc: dict, storage_uri: str, runtime: Runtime | None) -> dict:
    """A canary entry's model fields in full (the entry replaces the list, so nothing is merged)."""
    fields = {k: v for k, v in template(isvc, storage_uri, runtime).items() if v is not None}
    if runtime is not None and runtime.resources is not None:
        fields["resources"] = runtime.resources
    return fields
