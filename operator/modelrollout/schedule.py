"""When a rollout next needs a look: the hold before each analysis, its window and alpha, the
pace of the evaluation and shadow steps, and the requeue time. Pure functions of (spec, status, now)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from . import stats
from .builds import is_candidate
from .phases import ROLLING, STEPPING, Phase
from .shadow import shadow_alpha
from .spec import RolloutSpec
from .status import Status, count
from .steps import hold_of, planned_looks, steps_changed

POLL_APPLIED = 10.0  # seconds between looks while waiting for KServe to serve a step (its
# InferenceService's watch events usually bring the look sooner)


def timestamp(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(ts: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc) if ts else None


def left_to_judge(spec: RolloutSpec, status: Status) -> bool:
    """No pause, abort or promotion overrides a verdict, and the status's candidate is the spec's."""
    if spec.paused or spec.abort or (spec.promote and spec.promote == status.get("canaryVersion")):
        return False
    return is_candidate(spec, status)


def analysis_due(spec: RolloutSpec, status: Status, now: dt.datetime) -> bool:
    """Whether the next plan needs a verdict: a served step whose hold is over, with at least two
    scrape increments to read since the last window (one sample is no increment)."""
    if status.get("phase") not in STEPPING or not left_to_judge(spec, status):
        return False
    if steps_changed(spec, status):
        return False  # the plan snaps to a step first and restarts its hold
    if status.get("gate"):
        return False  # waiting for webhooks: before traffic, or after the last verdict
    return _due_in(spec, status, now) == 0.0


def _hooks_in(status: Status, key: Literal["gateCheckedAt", "rollbackCheckedAt"], spec: RolloutSpec, now: dt.datetime) -> float:
    """Seconds until webhooks last called at status[key] are called again (each strategy interval)."""
    tried = parse_time(status.get(key))
    return 0.0 if tried is None else max(0.0, spec.interval - (now - tried).total_seconds())


def gate_due(spec: RolloutSpec, status: Status, now: dt.datetime) -> bool:
    """The gate webhooks (status.gate: pre-rollout or confirm-promotion) are asked each interval."""
    if not status.get("gate") or status.get("phase") not in STEPPING or not left_to_judge(spec, status):
        return False
    return _hooks_in(status, "gateCheckedAt", spec, now) == 0.0


def rollback_hooks_due(spec: RolloutSpec, status: Status, now: dt.datetime) -> bool:
    """The rollback webhooks are asked each interval while the spec's candidate rolls out."""
    if not spec.has_hooks("rollback") or status.get("phase") not in ROLLING or spec.abort:
        return False
    if not is_candidate(spec, status):
        return False
    return _hooks_in(status, "rollbackCheckedAt", spec, now) == 0.0


def _due_in(spec: RolloutSpec, status: Status, now: dt.datetime) -> float | None:
    """Seconds until the next look (0: due), None while the step is not served."""
    since = _hold_since(status)
    if since is None:
        return None
    held = hold_of(spec, count(status, "currentStep")) - (now - since).total_seconds()
    # two whole scrape intervals: after the step's start the first scrape may come a whole interval
    # late (an increment must begin after it), after a window read the next one continues from it
    starts_step = status.get("measuredTo") is None or _window_from(status) == parse_time(status.get("stepStartedAt"))
    need = (3 if starts_step else 2) * spec.analysis.scrape_interval
    return max(0.0, held, need - (now - _window_from(status)).total_seconds())


def _hold_since(status: Status) -> dt.datetime | None:
    """The hold before the next look counts from the step being served, or from the last look at it."""
    started = parse_time(status.get("stepStartedAt"))
    if started is None:
        return None
    looked = parse_time((status.get("lastAnalysis") or {}).get("time"))
    return max(started, looked) if looked else started


def _window_from(status: Status) -> dt.datetime:
    """Where the next window may start: after the step was served, and after the last window read."""
    started = parse_time(status.get("stepStartedAt"))
    assert started is not None
    measured = parse_time(status.get("measuredTo"))
    return max(started, measured) if measured else started


def analysis_window(spec: RolloutSpec, status: Status, now: dt.datetime) -> tuple[dt.datetime, dt.datetime, dt.datetime]:
    """(start, end, since) of the metrics to judge: at most the spec's window, never reaching
    before the step was served (since) or into a window already read, so no request is counted
    twice and every window read can join the rollout's evidence."""
    since = parse_time(status.get("stepStartedAt")) or now
    return max(_window_from(status), now - dt.timedelta(seconds=spec.analysis.window)), now, since


def analysis_budget(spec: RolloutSpec) -> float:
    """What the analysis's looks may spend: the significance, less the guardrail's and the shadow step's shares."""
    g, sh = spec.analysis.guardrail, spec.shadow
    return spec.analysis.significance * (1.0 - (g.share if g else 0.0) - (sh.share if sh else 0.0))


def look_alpha(spec: RolloutSpec, status: Status) -> float:
    """The next look's share of the rollout's false-rollback budget (analysis_budget): a step's
    first tested look has the step's planned share, any further look at it (after an
    Inconclusive or a failure below failureLimit) the next extra share."""
    budget = analysis_budget(spec)
    if status.get("testedAt"):
        return stats.look_alpha(budget, planned_looks(spec), planned_looks(spec) + count(status, "extraLooks") + 1)
    step = min(count(status, "currentStep") + 1, planned_looks(spec))
    return stats.look_alpha(budget, planned_looks(spec), step)


def evaluation_due(spec: RolloutSpec, status: Status, now: dt.datetime) -> bool:
    """Whether the next plan needs the evaluation's verdict; after one that could not run, the
    next try waits a strategy interval."""
    if status.get("phase") != Phase.EVALUATING or not left_to_judge(spec, status):
        return False
    tried = parse_time(status.get("evaluatedAt"))
    return tried is None or (now - tried).total_seconds() >= spec.interval


def shadow_due(spec: RolloutSpec, status: Status, now: dt.datetime) -> bool:
    """Whether the next plan needs the shadow step's verdict: each strategy interval once the
    mirror is on, and at the end of the step's duration."""
    if status.get("phase") != Phase.SHADOWING or not left_to_judge(spec, status):
        return False
    return _shadow_in(spec, status, now) == 0.0


def _shadow_in(spec: RolloutSpec, s: Status, now: dt.datetime) -> float | None:
    started = parse_time(s.get("shadowStartedAt"))
    if started is None or spec.shadow is None:
        return None
    last = parse_time(s.get("shadowCheckedAt")) or started
    due = spec.interval - (now - last).total_seconds()
    end = started + dt.timedelta(seconds=spec.shadow.duration)
    if last < end:  # the look at the duration's end is not put off
        due = min(due, (end - now).total_seconds())
    return max(0.0, due)


def shadow_look_alpha(spec: RolloutSpec, status: Status) -> float:
    """The next shadow look's share of the rollout's significance."""
    assert spec.shadow is not None
    return shadow_alpha(spec.analysis.significance, spec.shadow.share, count(status, "shadowLooks") + 1)


def requeue_after(spec: RolloutSpec, s: Status, now: dt.datetime) -> float | None:
    """The next look: when the analysis, the evaluation, the guardrail or a webhook is due."""
    due = [
        t
        for t in (
            _looks_in(spec, s, now),
            _gate_in(spec, s, now),
            _hooks_in(s, "rollbackCheckedAt", spec, now) if spec.has_hooks("rollback") and s.get("phase") in ROLLING else None,
        )
        if t is not None
    ]
    return max(1.0, min(due)) if due else None


def _gate_in(spec: RolloutSpec, s: Status, now: dt.datetime) -> float | None:
    if not s.get("gate"):
        return None
    if s["gate"] == "pre-rollout" and not s.get("gateCheckedAt"):
        return POLL_APPLIED  # first asked once the candidate runs: its readiness is a watch event
    return _hooks_in(s, "gateCheckedAt", spec, now)


def _looks_in(spec: RolloutSpec, s: Status, now: dt.datetime) -> float | None:
    if s.get("phase") == Phase.EVALUATING:
        tried = parse_time(s.get("evaluatedAt"))
        return POLL_APPLIED if tried is None else max(1.0, spec.interval - (now - tried).total_seconds())
    if s.get("phase") == Phase.SHADOWING:
        due = _shadow_in(spec, s, now)
        return POLL_APPLIED if due is None else max(1.0, due)
    if s.get("phase") not in STEPPING:
        return None
    due = _due_in(spec, s, now)
    if due is not None and spec.analysis.guardrail is not None:
        due = min(due, spec.analysis.scrape_interval)  # the guard looks each scrape interval
    return POLL_APPLIED if due is None else max(1.0, due)
