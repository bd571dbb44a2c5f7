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
from typing import Any

from ..builds import Build, Runtime, holds, of_revision, of_template, predictor_container, quantities, replacing
from ..planner import Traffic
from .autoscaling import Scale
from .isvc import TAG_ROUTING, predictor, predictor_status, serving

ROLES = {"created": "latestCreatedRevision", "ready": "latestReadyRevision", "rolled_out": "latestRolledoutRevision"}


@dataclasses.dataclass(frozen=True)
class Revisions:
    """The revisions KServe's status names, by role, and what each runs (None: unknown)."""

    names: dict[str, str | None]
    builds: dict[str, Build | None]

    def runs(self, role: str) -> Build | None:
        return self.builds.get(role)

    def shows(self, role: str) -> str:
        build = self.builds.get(role)
        return build.describe() if build else "a model it does not name"


def revisions(isvc: dict, observed: dict) -> Revisions:
    names = {role: predictor_status(isvc).get(field) for role, field in ROLES.items()}
    return Revisions(names, {role: of_revision(observed.get(("revision", name))) if name else None for role, name in names.items()})


def model(isvc: dict) -> dict:
    return predictor(isvc).get("model") or {}


def template(isvc: dict, storage_uri: str, runtime: Runtime | None) -> dict:
    """spec.predictor.model's fields for a version: its storageUri and, where known, its runtime
    (resources only when they differ in quantity: KServe's webhook stores them in canonical form)."""
    fields: dict[str, Any] = {"storageUri": storage_uri}
    if runtime is None:
        return fields
    fields["runtimeVersion"] = runtime.runtime_version
    current = model(isvc).get("resources")
    if quantities(current or {}) != quantities(runtime.resources or {}):
        fields["resources"] = replacing(current, runtime.resources)
    return fields


class ServerlessRouter:
    mode = "serverless"
    serving = staticmethod(serving)

    def canary_weight(self, isvc: dict) -> int:
        return int(predictor(isvc).get("canaryTrafficPercent") or 0)

    def observe(self, isvc: dict) -> list[tuple[str, str]]:
        status = predictor_status(isvc)
        names = [status.get(field) for field in ROLES.values()] + [t.get("revisionName") for t in status.get("traffic") or []]
        return [("revision", name) for name in dict.fromkeys(names) if name]

    def stable_runtime(self, isvc: dict, observed: dict) -> Runtime | None:
        """Stable's runtime fields as the template holds them, with what the revision KServe rolled
        out runs when that revision runs the template's storageUri; None while the template holds
        a canary (canaryTrafficPercent set: a candidate, or one rolled back, may be in it)."""
        if "canaryTrafficPercent" in predictor(isvc):
            return None
        r, runtime = revisions(isvc, observed), of_template(model(isvc))
        rolled_out = r.runs("rolled_out")
        if rolled_out is None or rolled_out.storage_uri != model(isvc).get("storageUri"):
            return runtime
        container = predictor_container(observed.get(("revision", r.names["rolled_out"])))
        return dataclasses.replace(runtime, image=container.get("image"), pod_resources=container.get("resources") or {})

    def blocked(self, isvc: dict, stable: Build, observed: dict) -> str | None:
        """Why a canary would not split against stable: KServe sends what it does not take to the
        revision it last rolled out, and that one does not run stable (a template KServe has not
        rolled out yet, or someone else's change that made a candidate "rolled out")."""
        r = revisions(isvc, observed)
        if stable.matches(r.runs("rolled_out")):
            return None
        return (
            f"KServe sends what a canary does not take to revision {r.names['rolled_out']} "
            f"(latestRolledoutRevision), which runs {r.shows('rolled_out')}, not stable's {stable.describe()}"
        )

    def revisions(self, isvc: dict, observed: dict) -> list[tuple[str, Build]]:
        out = []
        for kind, name in self.observe(isvc):
            build = of_revision(observed.get((kind, name)))
            if build:
                out.append((name, build))
        return out

    def next_split(self, isvc: dict, observed: dict) -> list[tuple[Build, int]] | None:
        """[(what runs, percent)] KServe's next reconcile routes, from the InferenceService's spec and
        KServe's own bookkeeping (ksvc_reconciler.go): the percentage to the latest ready revision,
        the rest to the rolled-out one. Its status can show a split KServe is about to replace (it
        built the Knative Service from a stale read); None where a revision is not known."""
        r, canary = revisions(isvc, observed), predictor(isvc).get("canaryTrafficPercent")
        shares = [("ready", 100)] if canary is None else [("ready", int(canary)), ("rolled_out", 100 - int(canary))]
        out: list[tuple[Build, int]] = []
        for role, percent in shares:
            if percent:
                build = r.runs(role)
                if build is None:
                    return None
                out.append((build, percent))
        return out

    def addresses(self, isvc: dict, traffic: Traffic, observed: dict) -> tuple[dict[str, str] | None, str]:
        """KServe tags the traffic target of the latest revision `latest` (with the annotation
        serving.kserve.io/enable-tag-routing) and the last rolled-out one `prev`; Knative gives each
        tag a URL of its own. Ready when `latest` resolves to the latest created revision (Knative
        keeps a tag on the last ready one until then) running the candidate, and `prev` runs stable."""
        if not holds(model(isvc), traffic.canary_uri, traffic.canary_runtime):
            return None, "the InferenceService does not hold the candidate yet"
        status = predictor_status(isvc)
        created = status.get("latestCreatedRevision")
        tagged = {t.get("tag"): t for t in status.get("traffic") or [] if t.get("tag")}
        latest, prev = tagged.get("latest") or {}, tagged.get("prev") or {}
        if not latest.get("url"):
            return None, (f'KServe\'s status has no address for the latest revision: the InferenceService needs the annotation {TAG_ROUTING}: "true"')
        if latest.get("revisionName") != created:
            return None, f"the candidate's revision {created} is not ready"
        missing = _not_running(observed, created, traffic.canary_build)
        if missing:
            return None, missing
        if not prev.get("url"):
            return None, "KServe's status has no address for the revision it last rolled out (tag prev) yet"
        if not traffic.stable_build.matches(of_revision(observed.get(("revision", prev.get("revisionName"))))):
            return None, (f"revision {prev.get('revisionName')}, which KServe tags prev, does not run {traffic.stable_build.describe()}")
        return {"candidate": latest["url"], "stable": prev["url"]}, ""

    def pending(self, isvc: dict, traffic: Traffic, observed: dict) -> str | None:
        """Served when the traffic target KServe marks latestRevision carries the weight, Knative
        resolved it to the latest created revision (so it is ready: until then Knative keeps that
        share on the previous ready revision), and that revision runs the candidate's model."""
        if not holds(model(isvc), traffic.canary_uri, traffic.canary_runtime):
            return "the InferenceService does not hold the candidate yet"
        status = predictor_status(isvc)
        created = status.get("latestCreatedRevision")
        latest = [t for t in status.get("traffic") or [] if t.get("latestRevision")]
        if not latest or latest[0].get("percent") != traffic.canary_weight:
            return f"KServe's status does not show {traffic.canary_weight}% on the latest revision yet"
        if latest[0].get("revisionName") != created:
            return f"the candidate's revision {created} is not ready"
        return _not_running(observed, created, traffic.canary_build)

    def patch(self, isvc: dict, traffic: Traffic, stable: Scale, observed: dict) -> dict:
        r, canary = revisions(isvc, observed), traffic.canary_build
        if traffic.canary_version and canary and (traffic.canary_weight > 0 or traffic.evaluating):
            if not traffic.stable_build.matches(r.runs("rolled_out")):
                return {}  # the rest would not go to stable: blocked(), and the plan does not go on
            weight = traffic.canary_weight if canary.matches(r.runs("ready")) else 0
            return {
                "spec": {
                    "predictor": {
                        "canaryTrafficPercent": weight,
                        "model": template(isvc, canary.storage_uri, traffic.canary_runtime),
                        **stable.fields(),
                    }
                }
            }
        alone = {"canaryTrafficPercent": None, "model": template(isvc, traffic.stable_uri, traffic.stable_runtime), **stable.fields()}
        if holds(model(isvc), traffic.stable_uri, traffic.stable_runtime) and traffic.stable_build.matches(r.runs("ready")):
            return {"spec": {"predictor": alone}}  # the latest ready revision runs stable: it takes all
        if "canaryTrafficPercent" in predictor(isvc) and traffic.stable_build.matches(r.runs("rolled_out")):
            return {"spec": {"predictor": {"canaryTrafficPercent": 0}}}  # the rolled-out revision, stable, takes all
        return {"spec": {"predictor": alone}}  # no revision runs stable where KServe routes: make one


def _not_running(observed: dict, name: str | None, build: Build | None) -> str | None:
    """None if revision `name` runs `build`; else what it runs instead."""
    running = of_revision(observed.get(("revision", name)))
    if build is not None and build.matches(running):
        return None
    wanted = build.describe() if build else "the candidate"
    return f"revision {name} does not run {wanted} (KServe has not caught up yet)"
