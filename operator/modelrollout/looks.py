"""The looks one reconcile takes, each only when due (schedule.py says when): the analysis of a
served step, the guardrail's look during its hold, the evaluation step's holdout, the shadow
step's counts. Each reads through an adapter passed in and is judged by the pure judges; what a
verdict leads to is the planner's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Callable

from .analysis import ERROR, Measurements, Verdict, Window, judge
from .guardrail import guard, guard_alpha, guard_due
from .metrics import OperatorMetrics
from .schedule import analysis_due, analysis_window, evaluation_due, look_alpha, parse_time, shadow_due, shadow_look_alpha
from .shadow import ShadowSample, judge_shadow
from .spec import RolloutSpec
from .status import Status

# (spec, canary version, stable version (None: the canary alone), window, namespace,
# {version: Knative revisions running it}) -> what Prometheus says about them
Measure = Callable[[RolloutSpec, str, str | None, Window, str, dict[str, tuple[str, ...]]], Measurements]
# (spec, namespace, {"candidate": url, "stable": url}) -> the evaluation step's verdict
Evaluate = Callable[[RolloutSpec, str, dict], Verdict]
# (spec, namespace, stable version, window) -> (what stable's mirror counted, an error reading it)
MeasureShadow = Callable[[RolloutSpec, str, str, Window], tuple[ShadowSample | None, str | None]]
Revisions = Callable[[], dict[str, tuple[str, ...]]]


@dataclasses.dataclass
class Looks:
    measure: Measure
    metrics: OperatorMetrics
    evaluate: Evaluate | None = None  # None: no rollout may ask for the evaluation step
    shadow: MeasureShadow | None = None  # None: no rollout may ask for the shadow step

    def take(
        self, spec: RolloutSpec, status: Status, namespace: str, now: dt.datetime, revisions: Revisions, addresses: dict | None
    ) -> tuple[Verdict | None, bool]:
        """(the verdict of the look that was due, None if none was; whether a guard look ran,
        which counts for its share of the budget whatever it saw). addresses: both versions'
        while the candidate runs at 0% before traffic, once KServe gives them."""
        if analysis_due(spec, status, now):
            return self._count(self._analysis(spec, status, namespace, now, revisions)), False
        if guard_due(spec, status, now):
            return self._count(self._guard(spec, status, namespace, now, revisions)), True
        if addresses and evaluation_due(spec, status, now):
            if self.evaluate is None:
                raise RuntimeError("a rollout asks for the evaluation step but this Reconciler has no evaluate adapter")
            return self._count(self.evaluate(spec, namespace, addresses)), False
        if addresses and shadow_due(spec, status, now):
            return self._count(self._shadow(spec, status, namespace, now)), False
        return None, False

    def _count(self, verdict: Verdict | None) -> Verdict | None:
        if verdict is not None:
            self.metrics.decisions.labels(verdict.outcome).inc()
        return verdict

    def _analysis(self, spec: RolloutSpec, status: Status, namespace: str, now: dt.datetime, revisions: Revisions) -> Verdict:
        t0 = time.perf_counter()
        window, canary = Window(*(t.timestamp() for t in analysis_window(spec, status, now))), status.get("canaryVersion")
        assert canary is not None  # analysis_due: only while a candidate rolls out
        measured = self.measure(spec, canary, status["stableVersion"], window, namespace, revisions())
        verdict = judge(spec.analysis, measured, alpha=look_alpha(spec, status), evidence=status.get("evidence") or status.get("errorEvidence"))
        self.metrics.analysis_duration.observe(time.perf_counter() - t0)
        return verdict

    def _guard(self, spec: RolloutSpec, status: Status, namespace: str, now: dt.datetime, revisions: Revisions) -> Verdict | None:
        """The hold's cheap look: the canary alone since the step started."""
        step_started, canary = parse_time(status.get("stepStartedAt")), status.get("canaryVersion")
        assert step_started is not None and canary is not None  # guard_due: only once the step is served
        started = step_started.timestamp()
        measured = self.measure(spec, canary, None, Window(started, now.timestamp(), started), namespace, revisions())
        return guard(spec, measured, guard_alpha(spec, status))

    def _shadow(self, spec: RolloutSpec, status: Status, namespace: str, now: dt.datetime) -> Verdict:
        """Everything stable's mirror counted since it was turned on."""
        if self.shadow is None:
            raise RuntimeError("a rollout asks for the shadow step but this Reconciler has no shadow adapter")
        assert spec.shadow is not None
        started = parse_time(status["shadowStartedAt"])
        assert started is not None  # shadow_due: only once the mirror is on
        since = started.timestamp()
        sample, error = self.shadow(spec, namespace, status["stableVersion"], Window(since, now.timestamp(), since))
        return Verdict(ERROR, error) if error else judge_shadow(spec.shadow, sample, shadow_look_alpha(spec, status))
