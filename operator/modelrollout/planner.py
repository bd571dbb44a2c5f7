"""(spec, status, verdict, applied, now) -> what the rollout should look like next. Pure: no I/O.

All progress lives in status, so a restarted operator resumes at the same step, and planning
twice with the same inputs gives the same plan (reconciles are idempotent).

Phases: phases.py. The steps before traffic (the evaluation and the shadow step) are
before_traffic.py's; what the transitions share (Plan, Ctx, promotion, rollback) transitions.py's.

A step has two times: stepRequestedAt, when its weight was planned, and stepStartedAt, when
KServe's status first showed that weight served by a ready canary (`applied`). The analysis
window never reaches before stepStartedAt, so a step is never judged on the previous step's
traffic; the hold before each look counts from stepStartedAt or the step's last look. A step
not served within spec.strategy.progressDeadline rolls back. When each look is due: schedule.py.

plan() finds the first rule in RULES whose guard holds and applies its transition: one small
named function each.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, TypedDict

from .analysis import ERROR, FAIL, INCONCLUSIVE, PASS, Verdict
from .before_traffic import begin, judge_evaluation, judge_shadow_step, needs_evaluation, needs_shadow, start_mirror
from .builds import Runtime, adopt, candidate, is_candidate, runtime_of, with_revision
from .phases import BEFORE_TRAFFIC, HELD, ROLLING, STEPPING, Phase
from .schedule import parse_time, requeue_after, timestamp
from .spec import RolloutSpec
from .status import count, parse_status
from .steps import is_last_analysed, snapped_step, steps_changed
from .transitions import (
    Ctx,
    Event,
    Plan,
    Status,
    Traffic,
    _waited,
    count_error,
    has_canary,
    hold,
    miss_deadline,
    promote,
    resume_phase,
    roll_back,
    traffic_of,
)
from .webhooks import Answer, HookAnswers

__all__ = ["Event", "HELD", "Plan", "Traffic", "has_canary", "plan", "refuse", "traffic_of"]
# -- transitions -------------------------------------------------------------------------------


# What a new candidate starts without: an earlier candidate's looks, evidence, gates and verdicts.
FRESH: Status = {
    "failures": 0, "errors": 0, "looks": 0, "extraLooks": 0, "guardLooks": 0, "guardedAt": None,
    "evidence": None, "errorEvidence": None, "measuredTo": None, "inconclusiveSince": None,
    "evaluation": None, "evaluatedAt": None, "shadow": None,
    "preRolloutPassed": None, "gate": None, "gateCheckedAt": None,
}  # fmt: skip


def _new_candidate(c: Ctx, paused_by: str | None) -> None:
    c.s.update(FRESH)
    c.set(canaryVersion=c.spec.version, canaryStorageUri=c.spec.storage_uri, **_runtimes(c), retry=c.spec.retry, pausedBy=paused_by)


def start(c: Ctx) -> None:
    spec = c.spec
    if c.s.get("canaryVersion") and c.phase in ROLLING:
        c.events.append(Event("Normal", "RolloutRestarted", f"the wanted candidate changed from {c.s['canaryVersion']} to {spec.version}"))
    _new_candidate(c, None)
    begin(c, "RolloutStarted", f"rolling out {spec.version} over {c.s['stableVersion']}: ")


class _Runtimes(TypedDict, total=False):
    stableRuntime: dict[str, Any] | None
    canaryRuntime: dict[str, Any] | None


def _runtimes(c: Ctx) -> _Runtimes:
    """Stable's runtime as recorded (what its revision runs filled in from the one KServe rolled
    out, which runs stable: blocked() says so otherwise) and the candidate's, which follows from it."""
    stable = runtime_of(c.s, "stable") or c.serving
    if stable is None:
        return {}
    stable = with_revision(stable, c.serving)
    return {"stableRuntime": stable.to_status(), "canaryRuntime": candidate(stable, c.spec.runtime_version, c.spec.resources).to_status()}


def start_paused(c: Ctx) -> None:
    """A new candidate while spec.paused: recorded at 0%, and it starts when un-paused."""
    _new_candidate(c, "spec")
    c.set(currentStep=0, canaryWeight=0, stepStartedAt=None, stepRequestedAt=None, testedAt=None)
    c.go(Phase.PAUSED, "Paused", f"{c.spec.version} waits at 0% while spec.paused is set")


def refuse_while_aborted(c: Ctx) -> None:
    message = f"{c.spec.version} is not started while spec.abort is set"
    if c.s.get("message") != message:
        c.set(message=message)
        c.events.append(Event("Warning", "AbortSet", message))


def guardrail_tripped(c: Ctx) -> None:
    """A gross failure seen during the hold (guardrail.py): back to stable now, not after the hold."""
    assert c.verdict is not None
    c.set(lastAnalysis=c.verdict.to_status(timestamp(c.now)))
    c.events.append(Event("Warning", "GuardrailFailed", c.verdict.reason))
    roll_back(c, c.verdict.reason)


def roll_back_found(reason: str) -> Callable[[Ctx], None]:
    """What the platform shows (an external change, a mismatch) as a Warning of its own, then the rollback."""

    def transition(c: Ctx) -> None:
        why = c.external if reason == "ExternalChange" else c.blocked
        c.events.append(Event("Warning", reason, why or ""))
        roll_back(c, why or reason)

    return transition


def cancel(c: Ctx) -> None:
    c.set(
        canaryVersion=None,
        canaryStorageUri=None,
        canaryRuntime=None,
        canaryWeight=0,
        currentStep=None,
        stepStartedAt=None,
        stepRequestedAt=None,
        gate=None,
    )
    c.go(Phase.IDLE, "RolloutCancelled", f"the wanted version is stable {c.spec.version} again")


def settle_idle(c: Ctx) -> None:
    c.go(Phase.IDLE, "Idle", f"{c.spec.version} serves all traffic")


def pause(c: Ctx) -> None:
    c.set(pausedBy="spec")
    c.go(Phase.PAUSED, "Paused", f"paused at {c.s['canaryWeight']}% by spec.paused")


def resume(c: Ctx) -> None:
    """Un-paused by the user, or retried after the inconclusive policy paused it."""
    step = count(c.s, "currentStep")
    if c.s.get("pausedBy") == "policy":
        c.set(inconclusiveSince=None)  # a retry starts the inconclusive clock again; un-pausing does not
    c.set(pausedBy=None, retry=c.spec.retry)
    if needs_evaluation(c.spec, c.s) or needs_shadow(c.spec, c.s):
        begin(c, "Resumed", "resumed: ")  # paused before or during a step before traffic
        return
    if count(c.s, "canaryWeight") != c.spec.steps[step].weight:
        c.request_step(step)  # a candidate that waited at 0% while paused
    else:
        c.set(stepStartedAt=c.stamp)  # traffic never moved: the hold restarts now
    c.go(Phase.PROGRESSING, "Resumed", f"resumed at {c.s['canaryWeight']}%")


def snap_steps(c: Ctx) -> None:
    step = snapped_step(c.spec, count(c.s, "canaryWeight"))
    c.request_step(step)
    c.events.append(
        Event(
            "Normal", "StepsChanged", f"spec.strategy.steps changed: continuing at step {step + 1}/{len(c.spec.steps)}, {c.spec.steps[step].weight}%"
        )
    )


def confirm_step(c: Ctx) -> None:
    """KServe serves the step's weight: its hold starts now."""
    c.set(stepStartedAt=c.stamp)


# -- a traffic step's verdict ------------------------------------------------------------------


def judge_step(c: Ctx) -> None:
    verdict = c.verdict
    assert verdict is not None
    c.s["lastAnalysis"] = verdict.to_status(c.stamp)
    keep_evidence(c, verdict)
    if verdict.tested:  # spent its share of alpha (look_alpha)
        extra = count(c.s, "extraLooks") + (1 if c.s.get("testedAt") else 0)
        c.set(looks=count(c.s, "looks") + 1, extraLooks=extra, testedAt=c.stamp)
    {PASS: on_pass, FAIL: on_fail, INCONCLUSIVE: on_inconclusive, ERROR: on_error}[verdict.outcome](c, verdict)


def keep_evidence(c: Ctx, verdict: Verdict) -> None:
    """Every window read joins the rollout's evidence, whatever its verdict: the next window starts
    where it ended (measuredTo), so no request is counted twice and none that was read is lost."""
    if "evidence" in verdict.details:
        c.set(evidence=verdict.details["evidence"], errorEvidence=None, measuredTo=(verdict.details.get("window") or [None, c.stamp])[1])


def on_pass(c: Ctx, verdict: Verdict) -> None:
    step = count(c.s, "currentStep")
    c.set(inconclusiveSince=None, errors=0)
    if is_last_analysed(c.spec, step) and c.spec.has_hooks("confirm-promotion"):
        c.set(gate="confirm-promotion", gateCheckedAt=None)
        c.go(
            Phase.PROGRESSING,
            "AwaitingConfirmation",
            f"analysis passed at {c.s['canaryWeight']}%; promoting once the confirm-promotion webhooks answer 2xx",
        )
        return
    if is_last_analysed(c.spec, step):
        promote(c, f"analysis passed at {c.s['canaryWeight']}%")
        return
    c.set(failures=0)
    c.request_step(step + 1)
    c.go(
        Phase.PROGRESSING,
        "StepAdvanced",
        f"analysis passed ({verdict.reason}); step {step + 2}/{len(c.spec.steps)} at {c.spec.steps[step + 1].weight}%",
    )


def on_fail(c: Ctx, verdict: Verdict) -> None:
    failures = count(c.s, "failures") + 1
    c.set(failures=failures, inconclusiveSince=None, errors=0)
    limit = c.spec.analysis.failure_limit
    if failures >= limit:
        roll_back(c, f"analysis failed {failures} time(s): {verdict.reason}")
    else:
        c.set(stepStartedAt=c.stamp)  # the next window starts after this one (the error gates
        # still judge the rollout's evidence, this window's included)
        c.go(Phase.PROGRESSING, "AnalysisFailed", f"analysis failed ({failures}/{limit}): {verdict.reason}", warning=True)


def on_inconclusive(c: Ctx, verdict: Verdict) -> None:
    since = parse_time(c.s.get("inconclusiveSince")) or c.now
    waited = (c.now - since).total_seconds()
    c.set(inconclusiveSince=timestamp(since), errors=0)
    if waited < c.spec.analysis.inconclusive_after:
        hold(c, f"holding at {c.s['canaryWeight']}%: {verdict.reason}")
    elif c.spec.analysis.inconclusive_action == "rollback":
        roll_back(c, f"inconclusive for {waited:.0f}s: {verdict.reason}")
    else:  # paused at 0%: an unjudged candidate keeps no traffic
        c.set(pausedBy="policy", canaryWeight=0, stepStartedAt=None)
        c.go(
            Phase.PAUSED,
            "InconclusiveTimeout",
            f"inconclusive for {waited:.0f}s, paused with the candidate at 0% "
            f"(raise spec.retry to resume at step {int(c.s.get('currentStep') or 0) + 1}): {verdict.reason}",
            warning=True,
        )


def on_error(c: Ctx, verdict: Verdict) -> None:
    """The metrics could not be read."""
    counted = count_error(c, "metrics unreadable", verdict.reason)
    if counted:
        hold(c, f"holding at {c.s['canaryWeight']}%: {verdict.reason} ({counted})")


# -- the webhooks' gates (webhooks.py) ---------------------------------------------------------


def gate_refused(c: Ctx, answer: Answer) -> None:
    """A gate hook answered non-2xx or not at all: counted as an analysis Error."""
    kind = c.s["gate"]
    counted = count_error(c, f"the {kind} webhooks refused", answer.message)
    c.events.append(Event("Warning", "WebhookRefused", f"{kind}: {answer.message}"))
    if counted:
        c.set(message=f"waiting for the {kind} webhooks ({counted}): {answer.message}")


def pre_rollout(c: Ctx) -> None:
    answer = c.hooks.gate
    if answer is None:
        if not c.applied and _waited(c) >= c.spec.progress_deadline:
            miss_deadline(c)
        return
    if not answer.ok:
        gate_refused(c, answer)
        return
    c.set(preRolloutPassed=c.s["canaryVersion"], errors=0)
    c.request_step(count(c.s, "currentStep"))
    c.go(
        Phase.PROGRESSING,
        "PreRolloutPassed",
        f"pre-rollout webhooks passed ({answer.message}); step {count(c.s, 'currentStep') + 1}/{len(c.spec.steps)} at {c.s['canaryWeight']}%",
    )
    if c.s["canaryWeight"] >= 100:
        promote(c, "no step below 100% to analyse")


def confirm_promotion(c: Ctx) -> None:
    answer = c.hooks.gate
    assert answer is not None
    if not answer.ok:
        gate_refused(c, answer)
        return
    c.set(gate=None, errors=0)
    promote(c, f"analysis passed at {c.s['canaryWeight']}% and the confirm-promotion webhooks answered 2xx")


def webhook_rollback(c: Ctx) -> None:
    c.events.append(Event("Warning", "WebhookRollback", c.hooks.rollback or ""))
    roll_back(c, f"asked by a rollback webhook: {c.hooks.rollback}")


# -- rules: the first whose guard holds applies ------------------------------------------------


def _wants_candidate(spec: RolloutSpec, s: Status) -> bool:
    return not is_candidate(spec, s)


def _retried(spec: RolloutSpec, s: Status) -> bool:
    return spec.retry > count(s, "retry")


Guard = Callable[[RolloutSpec, Status, Ctx], bool]
RULES: list[tuple[str, Guard, Callable[[Ctx], None]]] = [
    (
        "cancel",
        lambda sp, s, c: sp.version == s["stableVersion"] and (c.phase in ROLLING or (c.phase == Phase.ROLLED_BACK and bool(s.get("canaryVersion")))),
        cancel,
    ),
    ("settle idle", lambda sp, s, c: sp.version == s["stableVersion"] and c.phase not in (Phase.IDLE, Phase.PROMOTED), settle_idle),
    ("nothing to roll out", lambda sp, s, c: sp.version == s["stableVersion"], lambda c: None),
    (
        "stay rolled back",
        lambda sp, s, c: c.phase == Phase.ROLLED_BACK and not _wants_candidate(sp, s) and (sp.abort or not _retried(sp, s)),
        lambda c: None,
    ),
    # the split the status describes is not what KServe routes: nothing measured can judge the candidate
    ("external change", lambda sp, s, c: bool(c.external) and has_canary(s), roll_back_found("ExternalChange")),
    ("serving mismatch", lambda sp, s, c: bool(c.blocked) and has_canary(s), roll_back_found("ServingMismatch")),
    ("abort", lambda sp, s, c: sp.abort and c.phase in ROLLING, lambda c: roll_back(c, "aborted by spec.abort")),
    ("rollback webhook", lambda sp, s, c: bool(c.hooks.rollback) and c.phase in ROLLING and not _wants_candidate(sp, s), webhook_rollback),
    ("refuse while aborted", lambda sp, s, c: sp.abort and _wants_candidate(sp, s), refuse_while_aborted),
    ("start paused", lambda sp, s, c: sp.paused and _wants_candidate(sp, s), start_paused),
    ("start", lambda sp, s, c: _wants_candidate(sp, s) or c.phase == Phase.ROLLED_BACK, start),
    ("promote now", lambda sp, s, c: sp.promote == s.get("canaryVersion") and c.phase in ROLLING, lambda c: promote(c, "promoted by spec.promote")),
    ("pause", lambda sp, s, c: sp.paused and c.phase in (*BEFORE_TRAFFIC, *STEPPING), pause),
    ("resume", lambda sp, s, c: not sp.paused and c.phase == Phase.PAUSED and (s.get("pausedBy") != "policy" or _retried(sp, s)), resume),
    ("steps edited", lambda sp, s, c: c.phase in ROLLING and steps_changed(sp, s), snap_steps),
    ("pre-rollout", lambda sp, s, c: c.phase in STEPPING and s.get("gate") == "pre-rollout", pre_rollout),
    ("step served", lambda sp, s, c: c.phase in STEPPING and not s.get("stepStartedAt") and c.applied, confirm_step),
    ("progress deadline", lambda sp, s, c: c.phase in STEPPING and not s.get("stepStartedAt") and _waited(c) >= sp.progress_deadline, miss_deadline),
    ("guardrail", lambda sp, s, c: c.phase in STEPPING and c.verdict is not None and bool(c.verdict.details.get("guardrail")), guardrail_tripped),
    (
        "confirm promotion",
        lambda sp, s, c: c.phase in STEPPING and s.get("gate") == "confirm-promotion" and c.hooks.gate is not None,
        confirm_promotion,
    ),
    ("judge", lambda sp, s, c: c.phase in STEPPING and c.verdict is not None, judge_step),
    ("evaluation deadline", lambda sp, s, c: c.phase == Phase.EVALUATING and not c.applied and _waited(c) >= sp.progress_deadline, miss_deadline),
    ("evaluated", lambda sp, s, c: c.phase == Phase.EVALUATING and c.verdict is not None, judge_evaluation),
    (
        "shadow deadline",
        lambda sp, s, c: c.phase == Phase.SHADOWING and not s.get("shadowStartedAt") and not c.applied and _waited(c) >= sp.progress_deadline,
        miss_deadline,
    ),
    ("mirror", lambda sp, s, c: c.phase == Phase.SHADOWING and not s.get("shadowStartedAt") and c.applied, start_mirror),
    ("shadowed", lambda sp, s, c: c.phase == Phase.SHADOWING and c.verdict is not None, judge_shadow_step),
]


def wait_for_stable(c: Ctx, before: Status) -> None:
    """A candidate would be written now, but what it does not take would not go to stable: wait
    (phase Waiting) until KServe has rolled out a revision that runs it, then start."""
    message = f"waiting for KServe to roll out stable {before['stableVersion']}: {c.blocked}"
    c.s = before.copy()
    c.set(phase=Phase.WAITING.value, resumePhase=before.get("phase"), message=message)
    c.events[:] = [Event("Normal", "StableNotRolledOut", message)]


def plan(
    spec: RolloutSpec,
    status: Status,
    serving: tuple[str, str],
    verdict: Verdict | None,
    now: dt.datetime,
    applied: bool = False,
    pending: str = "",
    external: str | None = None,
    blocked: str | None = None,
    guarded: bool = False,
    hooks: HookAnswers = HookAnswers(),
    runtime: Runtime | None = None,
) -> Plan:
    """serving: (version, storageUri) the InferenceService serves as stable, for a first reconcile.
    applied: KServe's status shows the status's canary weight served by a ready canary (before
    traffic: both versions have addresses); pending: what it is still waiting for, if not.
    verdict: the analysis's, or before traffic the evaluation's or the shadow step's. external: why the InferenceService
    is not as the operator left it (ownership.external_change); blocked: where KServe would send what
    a canary does not take, when that is not stable (the router's blocked()). guarded: a guard look
    ran (guardrail.py; a Fail comes as the verdict): counted, for its share of the budget. hooks:
    what the gate and rollback webhooks answered, when they were called (webhooks.py). runtime:
    stable's runtime fields in the InferenceService's template and, once known, what the revision
    KServe rolled out runs (builds.py)."""
    s: Status = parse_status(status)
    c = Ctx(spec, s, verdict, applied, now, pending, external, blocked, hooks, runtime)
    if guarded:
        c.set(guardLooks=count(s, "guardLooks") + 1, guardedAt=timestamp(now))
    if hooks.gate is not None:
        c.set(gateCheckedAt=timestamp(now))
    if hooks.rollback_checked:
        c.set(rollbackCheckedAt=timestamp(now))
    if not s.get("stableVersion"):
        c.set(stableVersion=serving[0], stableStorageUri=serving[1], phase=Phase.IDLE.value, canaryWeight=0)
    if runtime is not None and not s.get("canaryVersion") and serving[1] == s["stableStorageUri"]:
        c.set(stableRuntime=adopt(runtime_of(s, "stable"), runtime).to_status())  # the template is the user's
    if s.get("phase") in HELD:  # the spec and InferenceService are usable again: carry on from before
        c.set(phase=s.get("resumePhase") or (Phase.PROGRESSING.value if s.get("canaryVersion") else Phase.IDLE.value), resumePhase=None)
    if s.get("phase") != Phase.ROLLED_BACK and not (s.get("phase") == Phase.PAUSED and s.get("pausedBy") == "policy"):
        s["retry"] = spec.retry  # read where there is nothing to retry, so it cannot restart a later rollback
    before, fired = s.copy(), ""
    for name, guard, transition in RULES:
        if guard(spec, s, c):
            transition(c)
            fired = name
            break
    if blocked and has_canary(s) and not has_canary(before):
        wait_for_stable(c, before)
        fired += " (then waiting for stable)"
    s = c.s
    return Plan(status=s, traffic=traffic_of(s), events=tuple(c.events), requeue_after=requeue_after(spec, s, now), rule=fired)


def refuse(status: Status, reason: str, message: str, waiting: bool = False) -> Plan:
    """A spec or InferenceService the operator cannot act on (preflight.py, or one it cannot read):
    phase Failed (Waiting for what KServe resolves by itself), traffic untouched, and resumePhase
    where to carry on once it can."""
    phase = Phase.WAITING if waiting else Phase.FAILED
    event = Event("Normal" if waiting else "Warning", reason, message)
    return Plan({**status, "phase": str(phase), "resumePhase": resume_phase(status), "message": message}, None, (event,))
