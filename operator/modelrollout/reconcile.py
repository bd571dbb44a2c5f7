"""One reconcile of one ModelRollout: read -> (measure) -> plan -> write status -> route -> events.

The decisions are the pure planner's; this module only sequences the I/O, through adapters
passed in. Status is written before the InferenceService, so a crash in between leaves status
ahead of routing, and the next reconcile (planning the same from the same status) re-applies the
routing: progress is never lost or applied twice. A status write from a stale read gets 409 and
changes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Callable, Protocol

from .adapters.autoscaling import canary_scale, stable_scale
from .adapters.kube import NotFound
from .adapters.traffic import ROUTERS, Router, merge_patch
from .analysis import Measurements, judge
from .conditions import conditions
from .metrics import OperatorMetrics
from .planner import Event, Plan, Traffic, analysis_due, plan, timestamp
from .spec import RolloutSpec, SpecError, parse_spec


class Kube(Protocol):
    def get_rollout(self, namespace: str, name: str) -> dict: ...
    def write_status(self, rollout: dict, status: dict) -> dict: ...
    def get_isvc(self, namespace: str, name: str) -> dict: ...
    def patch_isvc(self, namespace: str, name: str, patch: dict) -> dict: ...
    def emit(self, rollout: dict, event: Event) -> None: ...


# (spec, canary version, stable version) -> what Prometheus says about them
Measure = Callable[[RolloutSpec, str, str], Measurements]


@dataclasses.dataclass
class Reconciler:
    kube: Kube
    measure: Measure
    metrics: OperatorMetrics
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)

    def __call__(self, namespace: str, name: str) -> float | None:
        """Returns seconds until this rollout next needs a look (None: only on change)."""
        started = time.perf_counter()
        try:
            return self._reconcile(namespace, name)
        finally:
            self.metrics.reconcile_duration.observe(time.perf_counter() - started)

    def _reconcile(self, namespace: str, name: str) -> float | None:
        try:
            rollout = self.kube.get_rollout(namespace, name)
        except NotFound:
            return None                                 # deleted meanwhile: nothing to do
        status = dict(rollout.get("status") or {})
        now = self.clock()
        try:
            spec = parse_spec(rollout.get("spec") or {})
        except SpecError as exc:
            return self._fail(rollout, status, "InvalidSpec", str(exc), now)
        try:
            isvc = self.kube.get_isvc(namespace, spec.inference_service)
        except NotFound:
            return self._fail(rollout, status, "InferenceServiceNotFound",
                              f"InferenceService {spec.inference_service!r} not found", now)
        router = ROUTERS[spec.traffic_mode]
        verdict = None
        if analysis_due(spec, status, now):
            t0 = time.perf_counter()
            verdict = judge(spec.analysis, self.measure(spec, status["canaryVersion"], status["stableVersion"]))
            self.metrics.analysis_duration.observe(time.perf_counter() - t0)
            self.metrics.decisions.labels(verdict.outcome).inc()
        p = plan(spec, status, router.serving(isvc), verdict, now)
        self._finish(rollout, status, p, now)
        self._route(namespace, spec, router, isvc, p.traffic)
        return p.requeue_after

    def _fail(self, rollout: dict, status: dict, reason: str, message: str, now: dt.datetime) -> None:
        """Phase Failed, traffic untouched; resumePhase remembers where to carry on once fixed."""
        resume = status.get("resumePhase") if status.get("phase") == "Failed" else status.get("phase")
        self._finish(rollout, status, Plan({**status, "phase": "Failed", "resumePhase": resume, "message": message},
                                           None, (Event("Warning", reason, message),)), now)

    def _finish(self, rollout: dict, before: dict, p: Plan, now: dt.datetime) -> None:
        meta = rollout["metadata"]
        generation = int(meta.get("generation") or 0)
        status = {**p.status, "observedGeneration": generation,
                  "conditions": conditions(p.status["phase"], p.status.get("message", ""), generation, timestamp(now),
                                           before.get("conditions"))}
        if status != (rollout.get("status") or {}):
            self.kube.write_status(rollout, status)
            for event in p.events:                  # the planner emits only on transitions and verdicts
                self.kube.emit(rollout, event)
                self.metrics.transitions.labels(event.reason).inc()
        self.metrics.observe(meta["namespace"], meta["name"], status)

    def _route(self, namespace: str, spec: RolloutSpec, router: Router, isvc: dict, traffic: Traffic) -> None:
        stable, canary = stable_scale(spec.autoscaling), canary_scale(spec.autoscaling, traffic.canary_weight)
        patches = []
        current = router.canary_weight(isvc)
        if traffic.canary_version and traffic.canary_weight > current:   # capacity first, then weight
            patches.append(router.patch(isvc, dataclasses.replace(traffic, canary_weight=current), stable, canary, warm=True))
        patches.append(router.patch(isvc, traffic, stable, canary))
        for patch in patches:
            if merge_patch(isvc, patch) != isvc:
                isvc = self.kube.patch_isvc(namespace, spec.inference_service, patch)

