"""Serverless mode: traffic through `spec.predictor.canaryTrafficPercent`. Pure.

KServe (ksvc_reconciler.go) turns the percentage into two Knative traffic targets: that share to
the latest revision (which Knative resolves to the latest *ready* one) and the rest, tagged
`prev`, to the revision KServe last rolled out (`latestRolledoutRevision`: the last one that took
100% as latest). Without the field the latest ready revision takes everything. So every write is
chosen by the storageUri those revisions run, read from the Knative revisions themselves:

- a canary step (or the evaluation step at 0%) writes the candidate's template once, with the
  stable's autoscaling, and its percentage only once the latest ready revision runs the candidate
  (until then 0%: the latest ready one may be an earlier, rejected candidate); never when the
  rolled-out revision does not run stable, since the rest would go to it;
- back to stable (rollback, abort, cancel): `canaryTrafficPercent: 0` with the template untouched
  (KServe's documented rollback) when the rolled-out revision runs stable; the template without
  the field once the latest ready revision runs stable (promotion, or a template re-applied with
  stable); otherwise stable's template, so that a revision running it is made.
"""
from __future__ import annotations

import dataclasses

from ..planner import Traffic
from .autoscaling import Scale
from .isvc import TAG_ROUTING, model_of, predictor, predictor_status, serving, template_uri

ROLES = {"created": "latestCreatedRevision", "ready": "latestReadyRevision", "rolled_out": "latestRolledoutRevision"}


@dataclasses.dataclass(frozen=True)
class Revisions:
    """The revisions KServe's status names, by role, and the storageUri each runs (None: unknown)."""
    template: str
    names: dict[str, str | None]
    uris: dict[str, str | None]

    def runs(self, role: str) -> str | None:
        return self.uris.get(role)


def revisions(isvc: dict, observed: dict) -> Revisions:
    names = {role: predictor_status(isvc).get(field) for role, field in ROLES.items()}
    uris = {role: model_of(observed.get(("revision", name))) if name else None for role, name in names.items()}
    return Revisions(template_uri(isvc), names, uris)


class ServerlessRouter:
    mode = "serverless"
    serving = staticmethod(serving)

    def canary_weight(self, isvc: dict) -> int:
        return int(predictor(isvc).get("canaryTrafficPercent") or 0)

    def observe(self, isvc: dict) -> list[tuple[str, str]]:
        status = predictor_status(isvc)
        names = [status.get(field) for field in ROLES.values()] + [t.get("revisionName") for t in status.get("traffic") or []]
        return [("revision", name) for name in dict.fromkeys(names) if name]

    def blocked(self, isvc: dict, stable_uri: str, observed: dict) -> str | None:
        """Why a canary would not split against stable: KServe sends what it does not take to the
        revision it last rolled out, and that one does not run stable (a template KServe has not
        rolled out yet, or someone else's change that made a candidate "rolled out")."""
        r = revisions(isvc, observed)
        if r.runs("rolled_out") == stable_uri:
            return None
        return (f"KServe sends what a canary does not take to revision {r.names['rolled_out']} "
                f"(latestRolledoutRevision), which runs {r.runs('rolled_out') or 'a model it does not name'}, "
                f"not stable's {stable_uri}")

    def revisions(self, isvc: dict, observed: dict) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for kind, name in self.observe(isvc):
            uri = model_of(observed.get((kind, name)))
            if uri:
                out[uri] = (*out.get(uri, ()), name)
        return out

    def next_split(self, isvc: dict, observed: dict) -> dict[str, int] | None:
        """{storageUri: percent} KServe's next reconcile routes, from the InferenceService's spec and
        KServe's own bookkeeping (ksvc_reconciler.go): the percentage to the latest ready revision,
        the rest to the rolled-out one. Its status can show a split KServe is about to replace (it
        built the Knative Service from a stale read); None where a revision is not known."""
        r, canary = revisions(isvc, observed), predictor(isvc).get("canaryTrafficPercent")
        shares = [("ready", 100)] if canary is None else [("ready", int(canary)), ("rolled_out", 100 - int(canary))]
        out: dict[str, int] = {}
        for role, percent in shares:
            if percent:
                uri = r.runs(role)
                if uri is None:
                    return None
                out[uri] = out.get(uri, 0) + percent
        return out

    def addresses(self, isvc: dict, traffic: Traffic, observed: dict) -> tuple[dict[str, str] | None, str]:
        """KServe tags the traffic target of the latest revision `latest` (with the annotation
        serving.kserve.io/enable-tag-routing) and the last rolled-out one `prev`; Knative gives each
        tag a URL of its own. Ready when `latest` resolves to the latest created revision (Knative
        keeps a tag on the last ready one until then) running the candidate, and `prev` runs stable."""
        if template_uri(isvc) != traffic.canary_uri:
            return None, "the InferenceService does not hold the candidate yet"
        status = predictor_status(isvc)
        created = status.get("latestCreatedRevision")
        tagged = {t.get("tag"): t for t in status.get("traffic") or [] if t.get("tag")}
        latest, prev = tagged.get("latest") or {}, tagged.get("prev") or {}
        if not latest.get("url"):
            return None, (f"KServe's status has no address for the latest revision: the InferenceService needs the "
                          f"annotation {TAG_ROUTING}: \"true\"")
        if latest.get("revisionName") != created:
            return None, f"the candidate's revision {created} is not ready"
        if model_of(observed.get(("revision", created))) != traffic.canary_uri:
            return None, f"revision {created} does not run {traffic.canary_uri} (KServe has not caught up yet)"
        if not prev.get("url"):
            return None, "KServe's status has no address for the revision it last rolled out (tag prev) yet"
        if model_of(observed.get(("revision", prev.get("revisionName")))) != traffic.stable_uri:
            return None, f"revision {prev.get('revisionName')}, which KServe tags prev, does not run {traffic.stable_uri}"
        return {"candidate": latest["url"], "stable": prev["url"]}, ""

    def pending(self, isvc: dict, traffic: Traffic, observed: dict) -> str | None:
        """Served when the traffic target KServe marks latestRevision carries the weight, Knative
        resolved it to the latest created revision (so it is ready: until then Knative keeps that
        share on the previous ready revision), and that revision runs the candidate's model."""
        if template_uri(isvc) != traffic.canary_uri:
            return "the InferenceService does not hold the candidate yet"
        status = predictor_status(isvc)
        created = status.get("latestCreatedRevision")
        latest = [t for t in status.get("traffic") or [] if t.get("latestRevision")]
        if not latest or latest[0].get("percent") != traffic.canary_weight:
            return f"KServe's status does not show {traffic.canary_weight}% on the latest revision yet"
        if latest[0].get("revisionName") != created:
            return f"the candidate's revision {created} is not ready"
        if model_of(observed.get(("revision", created))) != traffic.canary_uri:
            return f"revision {created} does not run {traffic.canary_uri} (KServe has not caught up yet)"
        return None

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale, observed: dict) -> dict:
        r = revisions(isvc, observed)
        if traffic.canary_version and (traffic.canary_weight > 0 or traffic.evaluating):
            if r.runs("rolled_out") != traffic.stable_uri:
                return {}                   # the rest would not go to stable: blocked(), and the plan does not go on
            weight = traffic.canary_weight if r.runs("ready") == traffic.canary_uri else 0
            return {"spec": {"predictor": {"canaryTrafficPercent": weight, "model": {"storageUri": traffic.canary_uri},
                                           **stable.fields()}}}
        alone = {"canaryTrafficPercent": None, "model": {"storageUri": traffic.stable_uri}, **stable.fields()}
        if r.template == traffic.stable_uri and r.runs("ready") == traffic.stable_uri:
            return {"spec": {"predictor": alone}}            # the latest ready revision runs stable: it takes all
        if "canaryTrafficPercent" in predictor(isvc) and r.runs("rolled_out") == traffic.stable_uri:
            return {"spec": {"predictor": {"canaryTrafficPercent": 0}}}   # the rolled-out revision, stable, takes all
        return {"spec": {"predictor": alone}}                # no revision runs stable where KServe routes: make one
