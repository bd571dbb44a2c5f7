"""The steps before any traffic, in this order: the evaluation (a labelled holdout scored on both
versions: evaluation.py) and the shadow step (stable mirrors a fraction of its live requests to
the candidate and the paired answers are compared: shadow.py). In both the candidate runs at 0%
with an address of its own (KServe's tag routing); each rolls back on a Fail, and the first
traffic step starts only once every step the spec asks for has passed for this candidate.

The shadow step starts (shadowStartedAt) once both versions have addresses: reconcile then
writes the mirror's file for stable's pods and clears it when the phase ends. Its looks come
each strategy interval; at spec.strategy.shadow.duration still Inconclusive, it ends as
spec.analysis.onInconclusive says (paused at 0%, or rolled back). Pure: no I/O.
"""

from __future__ import annotations

from .analysis import ERROR, FAIL, PASS
from .phases import Phase
from .schedule import parse_time
from .spec import RolloutSpec
from .status import count
from .transitions import Ctx, Event, Status, count_error, first_step, roll_back


def begin(c: Ctx, reason: str, why: str) -> None:
    """The candidate's first step before traffic this candidate has not passed, else step 1."""
    if needs_evaluation(c.spec, c.s):
        evaluate_first(c)
    else:
        after(c, reason, why)


def after(c: Ctx, reason: str, why: str) -> None:
    """Past the evaluation: the shadow step if it is asked for and not passed, else step 1."""
    if needs_shadow(c.spec, c.s):
        shadow_first(c)
    else:
        first_step(c, reason, why)


# -- the evaluation step -----------------------------------------------------------------------


def needs_evaluation(spec: RolloutSpec, s: Status) -> bool:
    """The spec asks for an evaluation this candidate has not passed, and it takes no traffic yet."""
    return spec.evaluation is not None and not count(s, "canaryWeight") and (s.get("evaluation") or {}).get("verdict") != PASS


def evaluate_first(c: Ctx) -> None:
    """The candidate runs at 0% (KServe's canaryTrafficPercent: 0) until the holdout is scored."""
    c.at_zero()
    c.set(evaluatedAt=None)
    e = c.spec.evaluation
    assert e is not None
    c.go(
        Phase.EVALUATING,
        "EvaluationStarted",
        f"evaluating {c.s['canaryVersion']} against {c.s['stableVersion']} on "
        f"the holdout in ConfigMap {e.config_map} ({e.metric}) before any traffic",
    )


def judge_evaluation(c: Ctx) -> None:
    verdict = c.verdict
    assert verdict is not None
    c.set(evaluatedAt=c.stamp)
    if verdict.outcome == ERROR:  # counted as unreadable metrics are
        counted = count_error(c, "the evaluation could not run", verdict.reason)
        if counted:
            c.go(
                Phase.EVALUATING,
                "EvaluationError",
                f"evaluation could not run ({counted}), trying again in {c.spec.interval:.0f}s: {verdict.reason}",
                warning=True,
            )
        return
    c.set(evaluation={**verdict.to_status(c.stamp), "version": c.s["canaryVersion"], "stableVersion": c.s["stableVersion"]}, errors=0)
    if verdict.outcome != PASS:
        c.events.append(Event("Warning", "EvaluationFailed", verdict.reason))
        roll_back(c, f"evaluation failed before any traffic: {verdict.reason}")
        return
    after(c, "EvaluationPassed", f"evaluation passed ({verdict.reason}); ")


# -- the shadow step ---------------------------------------------------------------------------


def needs_shadow(spec: RolloutSpec, s: Status) -> bool:
    """The spec asks for a shadow step this candidate has not passed, and it takes no traffic yet."""
    return spec.shadow is not None and not count(s, "canaryWeight") and (s.get("shadow") or {}).get("verdict") != PASS


def shadow_first(c: Ctx) -> None:
    """The candidate runs at 0% until the mirror's pairs are judged; the step starts once it has an address."""
    c.at_zero()
    c.set(shadow=None, shadowStartedAt=None, shadowCheckedAt=None, shadowLooks=0, errors=0)
    sh = c.spec.shadow
    assert sh is not None
    c.go(
        Phase.SHADOWING,
        "ShadowStarted",
        f"{c.s['canaryVersion']} runs at 0% while {c.s['stableVersion']} mirrors {sh.fraction:.0%} of its requests to it, before any traffic",
    )


def start_mirror(c: Ctx) -> None:
    """Both versions have addresses: the mirror is written now (reconcile.py) and the pairs count from here."""
    sh = c.spec.shadow
    assert sh is not None
    c.set(shadowStartedAt=c.stamp)
    c.set(
        message=f"{c.s['stableVersion']} mirrors {sh.fraction:.0%} of its requests to {c.s['canaryVersion']}: "
        f"at least {sh.min_pairs} paired predictions per output, at most {sh.max_disagreement:.1%} "
        f"disagreeing, within {sh.duration:.0f}s"
    )


def judge_shadow_step(c: Ctx) -> None:
    verdict, sh = c.verdict, c.spec.shadow
    assert verdict is not None and sh is not None
    c.set(shadowCheckedAt=c.stamp, shadowLooks=count(c.s, "shadowLooks") + (1 if verdict.tested else 0))
    if verdict.outcome == ERROR:
        counted = count_error(c, "the shadow comparison could not be read", verdict.reason)
        if counted:
            c.go(Phase.SHADOWING, "ShadowError", f"shadow comparison unreadable ({counted}): {verdict.reason}", warning=True)
        return
    c.set(shadow={**verdict.to_status(c.stamp), "version": c.s["canaryVersion"], "stableVersion": c.s["stableVersion"]}, errors=0)
    if verdict.outcome == FAIL:
        c.events.append(Event("Warning", "ShadowFailed", verdict.reason))
        roll_back(c, f"shadow comparison failed before any traffic: {verdict.reason}")
        return
    if verdict.outcome == PASS:
        first_step(c, "ShadowPassed", f"shadow comparison passed ({verdict.reason}); ")
        return
    started = parse_time(c.s.get("shadowStartedAt")) or c.now
    waited = (c.now - started).total_seconds()
    if waited < sh.duration:
        c.set(message=f"shadowing for {waited:.0f}s of {sh.duration:.0f}s: {verdict.reason}")
    elif c.spec.analysis.inconclusive_action == "rollback":
        roll_back(c, f"shadow comparison inconclusive after {waited:.0f}s: {verdict.reason}")
    else:  # as an inconclusive step: paused at 0%, retried by spec.retry
        c.set(pausedBy="policy")
        c.go(
            Phase.PAUSED,
            "InconclusiveTimeout",
            f"shadow comparison inconclusive after {waited:.0f}s, paused "
            f"with the candidate at 0% (raise spec.retry to shadow again): {verdict.reason}",
            warning=True,
        )
