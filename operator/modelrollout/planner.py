"""(spec, status, verdict, now) -> what the rollout should look like next. Pure: no I/O.

All progress lives in status, so a restarted operator resumes at the same step, and planning
twice with the same inputs gives the same plan (reconciles are idempotent).

Phases: Idle (stable serves all), Progressing (a canary step is running), Holding (the last
analysis was Inconclusive), Paused, Promoted, RolledBack, Failed (a spec the operator cannot
act on; handlers.py sets it).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

from .analysis import FAIL, INCONCLUSIVE, PASS, Verdict
from .spec import AutoscalingSpec, RolloutSpec

Status = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Traffic:
    stable_version: str
    stable_uri: str
    canary_version: str | None = None
    canary_uri: str | None = None
    canary_weight: int = 0


@dataclasses.dataclass(frozen=True)
class Event:
    type: str      # Normal | Warning
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    status: Status
    traffic: Traffic
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None   # seconds until the next look; None: wait for a change


def timestamp(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc) if ts else None


def capacity(autoscaling: AutoscalingSpec, weight: int) -> tuple[int, int]:
    """Canary replicas (min, max) in step with its traffic share, never below one while it serves."""
    if weight <= 0:
        return 0, 0
    low = max(1, math.ceil(autoscaling.min_replicas * weight / 100))
    return low, max(low, math.ceil(autoscaling.max_replicas * weight / 100))


def hold_of(spec: RolloutSpec, step: int) -> float:
    hold = spec.steps[step].hold
    return spec.interval if hold is None else hold


def analysis_due(spec: RolloutSpec, status: Status, now: dt.datetime) -> bool:
    """Whether the next plan needs a verdict: a running step whose hold is over."""
    if status.get("phase") not in ("Progressing", "Holding") or spec.paused or spec.abort:
        return False
    if spec.promote and spec.promote == status.get("canaryVersion"):
        return False
    if spec.version != status.get("canaryVersion"):
        return False
    started = _parse(status.get("stepStartedAt"))
    return started is None or (now - started).total_seconds() >= hold_of(spec, status.get("currentStep", 0))


def traffic_of(status: Status) -> Traffic:
    return Traffic(status["stableVersion"], status["stableStorageUri"], status.get("canaryVersion"),
                   status.get("canaryStorageUri"), int(status.get("canaryWeight") or 0))


def plan(spec: RolloutSpec, status: Status, serving: tuple[str, str], verdict: Verdict | None,
         now: dt.datetime) -> Plan:
    """serving: (version, storageUri) the InferenceService serves as stable, for a first reconcile."""
    s: Status = dict(status)
    events: list[Event] = []
    if not s.get("stableVersion"):
        s.update(stableVersion=serving[0], stableStorageUri=serving[1], phase="Idle", canaryWeight=0)
    phase = s.get("phase", "Idle")
    if phase == "Failed":          # the spec and InferenceService are usable again: carry on from before
        phase = s.get("resumePhase") or ("Progressing" if s.get("canaryVersion") else "Idle")
        s.update(phase=phase, resumePhase=None)

    def go(new_phase: str, reason: str, message: str, warning: bool = False) -> None:
        nonlocal phase
        phase = new_phase
        s.update(phase=new_phase, message=message)
        events.append(Event("Warning" if warning else "Normal", reason, message))

    def start() -> None:
        s.update(canaryVersion=spec.version, canaryStorageUri=spec.storage_uri, currentStep=0,
                 canaryWeight=spec.steps[0].weight, stepStartedAt=timestamp(now), failures=0,
                 inconclusiveSince=None, retry=spec.retry)
        go("Progressing", "RolloutStarted", f"rolling out {spec.version} over {s['stableVersion']}: "
           f"step 1/{len(spec.steps)} at {spec.steps[0].weight}%")

    def promote(why: str) -> None:
        version = s["canaryVersion"]
        s.update(stableVersion=version, stableStorageUri=s["canaryStorageUri"], canaryVersion=None,
                 canaryStorageUri=None, canaryWeight=0, currentStep=None, stepStartedAt=None,
                 inconclusiveSince=None)
        go("Promoted", "Promoted", f"{version} promoted to stable: {why}")

    def roll_back(why: str) -> None:
        s.update(canaryWeight=0, stepStartedAt=None, inconclusiveSince=None)
        go("RolledBack", "RolledBack", f"{s['canaryVersion']} rolled back, {s['stableVersion']} serves all traffic: {why}", warning=True)

    candidate = s.get("canaryVersion")
    rolling = phase in ("Progressing", "Holding", "Paused")
    if spec.version == s["stableVersion"]:
        if rolling or (phase == "RolledBack" and candidate):
            s.update(canaryVersion=None, canaryStorageUri=None, canaryWeight=0, currentStep=None, stepStartedAt=None)
            go("Idle", "RolloutCancelled", f"the wanted version is stable {spec.version} again")
        elif phase not in ("Idle", "Promoted"):
            go("Idle", "Idle", f"{spec.version} serves all traffic")
    elif candidate != spec.version:
        if rolling:
            events.append(Event("Normal", "RolloutRestarted", f"the wanted version changed from {candidate} to {spec.version}"))
        start()
    elif phase == "RolledBack":
        if spec.retry > int(s.get("retry") or 0) and not spec.abort:
            start()
    elif spec.abort:
        roll_back("aborted by spec.abort")
    elif spec.promote == candidate:
        promote("promoted by spec.promote")
    elif phase == "Promoted":
        pass
    elif spec.paused:
        if phase != "Paused":
            s.update(pausedBy="spec")
            go("Paused", "Paused", f"paused at {s['canaryWeight']}% by spec.paused")
    elif phase == "Paused" and (s.get("pausedBy") != "policy" or spec.retry > int(s.get("retry") or 0)):
        # un-paused by the user, or (after the inconclusive policy paused it) retried
        s.update(stepStartedAt=timestamp(now), inconclusiveSince=None, pausedBy=None, retry=spec.retry)
        go("Progressing", "Resumed", f"resumed at {s['canaryWeight']}%")
    elif phase in ("Progressing", "Holding") and verdict is not None:
        s["lastAnalysis"] = verdict.to_status(timestamp(now))
        step = int(s.get("currentStep") or 0)
        if verdict.outcome == PASS:
            s.update(inconclusiveSince=None)
            if step + 1 >= len(spec.steps):
                promote(f"analysis passed at {s['canaryWeight']}%")
            else:
                step += 1
                s.update(currentStep=step, canaryWeight=spec.steps[step].weight, stepStartedAt=timestamp(now))
                go("Progressing", "StepAdvanced", f"analysis passed ({verdict.reason}); step {step + 1}/{len(spec.steps)} at {spec.steps[step].weight}%")
        elif verdict.outcome == FAIL:
            failures = int(s.get("failures") or 0) + 1
            s.update(failures=failures, inconclusiveSince=None)
            if failures >= spec.analysis.failure_limit:
                roll_back(f"analysis failed {failures} time(s): {verdict.reason}")
            else:
                s.update(stepStartedAt=timestamp(now))
                go("Progressing", "AnalysisFailed", f"analysis failed ({failures}/{spec.analysis.failure_limit}): {verdict.reason}", warning=True)
        elif verdict.outcome == INCONCLUSIVE:
            since = _parse(s.get("inconclusiveSince")) or now
            s.update(inconclusiveSince=timestamp(since), stepStartedAt=timestamp(now))
            if (now - since).total_seconds() >= spec.analysis.inconclusive_after:
                if spec.analysis.inconclusive_action == "rollback":
                    roll_back(f"inconclusive for {(now - since).total_seconds():.0f}s: {verdict.reason}")
                else:
                    s.update(pausedBy="policy")
                    go("Paused", "InconclusiveTimeout", f"inconclusive for {(now - since).total_seconds():.0f}s, paused "
                       f"at {s['canaryWeight']}% (raise spec.retry to resume): {verdict.reason}", warning=True)
            else:
                go("Holding", "AnalysisInconclusive", f"holding at {s['canaryWeight']}%: {verdict.reason}")
    requeue = None
    if phase in ("Progressing", "Holding"):
        started = _parse(s.get("stepStartedAt")) or now
        requeue = max(1.0, hold_of(spec, int(s.get("currentStep") or 0)) - (now - started).total_seconds())
    return Plan(status=s, traffic=traffic_of(s), events=tuple(events), requeue_after=requeue)
