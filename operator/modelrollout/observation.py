"""What one reconcile reads of the platform for a rollout, and what follows from it before any
decision: the InferenceService and the objects its traffic mode's router asked for (the Knative
revisions KServe's status names, or the HTTPRoute), the patch a split would need, whether
someone else changed the InferenceService mid-rollout (ownership.py), whether a canary would
split against stable (the router's blocked()), what KServe still has to serve, and each
version's addresses and revisions. No I/O here: the objects are read by reconcile.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from .adapters.autoscaling import stable_scale
from .adapters.isvc import merge_patch, served
from .adapters.traffic import Router
from .builds import Build, Runtime
from .ownership import external_change
from .phases import BEFORE_TRAFFIC
from .serving import Split
from .spec import RolloutSpec
from .status import count
from .transitions import Status, Traffic, traffic_of


@dataclasses.dataclass(frozen=True)
class Observation:
    namespace: str
    spec: RolloutSpec
    isvc: dict
    router: Router
    objects: dict  # (kind, name) -> the object, None where absent
    now: dt.datetime

    def patch(self, traffic: Traffic) -> dict:
        """The InferenceService patch that asks KServe for `traffic` (empty in effect when it is there)."""
        return self.router.patch(self.isvc, traffic, stable_scale(self.spec.autoscaling), self.objects)

    def unchanged(self, patch: dict) -> bool:
        return merge_patch(self.isvc, patch) == self.isvc

    @property
    def serving(self) -> tuple[str, str]:
        return self.router.serving(self.isvc)

    @property
    def stable_runtime(self) -> Runtime | None:
        return self.router.stable_runtime(self.isvc, self.objects)

    def blocked(self, status: Status) -> str | None:
        """Where KServe would send what a canary does not take, when that is not stable."""
        stable = traffic_of(status).stable_build if status.get("stableVersion") else Build(self.serving[1])
        return self.router.blocked(self.isvc, stable, self.objects)

    def external(self, status: Status) -> str | None:
        """Why the InferenceService is not as the operator left it (someone else's change), or None."""
        if not status.get("stableVersion"):
            return None
        return external_change(status, self.isvc, self.unchanged(self.patch(traffic_of(status))))

    def pending(self, status: Status) -> tuple[str | None, dict | None]:
        """(what keeps KServe from serving the status's canary weight, None when it does; before
        traffic, the versions' addresses once both have one)."""
        if status.get("phase") in BEFORE_TRAFFIC and status.get("canaryVersion"):
            addresses, missing = self.router.addresses(self.isvc, traffic_of(status), self.objects)
            return (None, addresses) if addresses else (missing, None)
        if status.get("gate") == "pre-rollout" and status.get("canaryVersion"):
            if self.spec.traffic_mode != "serverless":
                return None, None  # KServe runs no pods for a 0% canary: asked before it is written
            return self.router.pending(self.isvc, traffic_of(status), self.objects), None  # its revision ready at 0%
        if not status.get("canaryVersion") or not count(status, "canaryWeight"):
            return "no canary weight to serve", None
        return self.router.pending(self.isvc, traffic_of(status), self.objects), None

    def revisions(self, status: Status) -> dict[str, tuple[str, ...]]:
        """{version: the Knative revisions running it}, for providers that read revisions."""
        running, traffic = self.router.revisions(self.isvc, self.objects), traffic_of(status)
        builds = {status.get("canaryVersion"): traffic.canary_build, status["stableVersion"]: traffic.stable_build}
        return {
            version: tuple(name for name, runs in running if build is not None and build.matches(runs))
            for version, build in builds.items()
            if version is not None
        }

    def routing(self) -> tuple[Split | None, Split | None]:
        """(what the revisions KServe's status routes to run, what KServe's next reconcile routes)."""
        revisions = {name: obj for (_, name), obj in self.objects.items() if obj}
        return served(self.isvc, revisions), self.router.next_split(self.isvc, self.objects)
