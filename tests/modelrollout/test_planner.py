import dataclasses
import datetime as dt

import pytest

from modelrollout.analysis import FAIL, INCONCLUSIVE, PASS, Verdict
from modelrollout.planner import analysis_due, capacity, plan, timestamp
from modelrollout.spec import AutoscalingSpec, parse_spec

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SERVING = ("v1", "pvc://m/cancer/v1")
P, F, I = Verdict(PASS, "ok"), Verdict(FAIL, "bad"), Verdict(INCONCLUSIVE, "too few")


def spec(**changes):
    s = parse_spec({"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "pvc://m/cancer/v2"},
                    "strategy": {"steps": [{"weight": 5, "hold": "2m"}, {"weight": 50}, {"weight": 100}], "interval": "1m"},
                    "analysis": {"prometheus": {"url": "http://p"}, "onInconclusive": {"after": "5m"}}})
    return dataclasses.replace(s, **changes)


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def progressing(step=0, weight=5, started=0, **extra):
    return {"phase": "Progressing", "stableVersion": "v1", "stableStorageUri": SERVING[1], "canaryVersion": "v2",
            "canaryStorageUri": "pvc://m/cancer/v2", "canaryWeight": weight, "currentStep": step,
            "stepStartedAt": timestamp(at(started)), "failures": 0, "retry": 0, **extra}


def test_first_reconcile_starts_a_rollout_from_what_the_service_serves():
    p = plan(spec(), {}, SERVING, None, T0)
    assert p.status["phase"] == "Progressing" and p.status["stableVersion"] == "v1"
    assert (p.traffic.canary_version, p.traffic.canary_weight) == ("v2", 5)
    assert [e.reason for e in p.events] == ["RolloutStarted"] and p.requeue_after == 120


def test_nothing_to_do_when_the_wanted_version_is_stable():
    p = plan(spec(version="v1"), {}, SERVING, None, T0)
    assert p.status["phase"] == "Idle" and p.traffic.canary_version is None and p.requeue_after is None


@pytest.mark.parametrize("status, now, due", [
    (progressing(started=0), 119, False),      # the first step holds 2m
    (progressing(started=0), 120, True),
    (progressing(step=1, weight=50, started=0), 60, True),   # later steps use the 1m interval
    ({**progressing(), "phase": "Holding"}, 120, True),
    ({**progressing(), "phase": "Paused"}, 999, False),
    ({**progressing(), "phase": "Promoted"}, 999, False),
])
def test_analysis_is_due_when_the_hold_is_over(status, now, due):
    assert analysis_due(spec(), status, at(now)) is due


@pytest.mark.parametrize("status, verdict, phase, weight, step, reasons", [
    (progressing(), P, "Progressing", 50, 1, ["StepAdvanced"]),
    (progressing(step=1, weight=50), P, "Progressing", 100, 2, ["StepAdvanced"]),
    (progressing(step=2, weight=100), P, "Promoted", 0, None, ["Promoted"]),
    (progressing(step=1, weight=50), F, "RolledBack", 0, 1, ["RolledBack"]),
    (progressing(step=1, weight=50), I, "Holding", 50, 1, ["AnalysisInconclusive"]),
    ({**progressing(step=1, weight=50), "phase": "Holding", "inconclusiveSince": timestamp(at(0))}, P, "Progressing", 100, 2, ["StepAdvanced"]),
])
def test_verdict_transitions(status, verdict, phase, weight, step, reasons):
    p = plan(spec(), status, SERVING, verdict, at(200))
    assert p.status["phase"] == phase
    assert p.traffic.canary_weight == weight and p.status.get("currentStep") == step
    assert [e.reason for e in p.events] == reasons
    assert p.status["lastAnalysis"]["verdict"] == verdict.outcome


def test_promotion_makes_the_candidate_stable_and_clears_the_canary():
    p = plan(spec(), progressing(step=2, weight=100), SERVING, P, at(200))
    assert (p.traffic.stable_version, p.traffic.stable_uri) == ("v2", "pvc://m/cancer/v2")
    assert p.traffic.canary_version is None and p.requeue_after is None
    again = plan(spec(), p.status, SERVING, None, at(300))  # no double promotion
    assert again.status == p.status and again.events == ()


def test_failures_below_the_limit_hold_the_step():
    s = spec(analysis=dataclasses.replace(spec().analysis, failure_limit=2))
    p = plan(s, progressing(step=1, weight=50), SERVING, F, at(200))
    assert p.status["phase"] == "Progressing" and p.status["failures"] == 1 and p.traffic.canary_weight == 50
    assert p.events[0].type == "Warning"
    assert plan(s, p.status, SERVING, F, at(400)).status["phase"] == "RolledBack"


@pytest.mark.parametrize("action, phase", [("pause", "Paused"), ("rollback", "RolledBack")])
def test_inconclusive_holds_then_applies_the_policy_and_never_promotes(action, phase):
    s = spec(analysis=dataclasses.replace(spec().analysis, inconclusive_action=action))
    status = progressing(step=2, weight=100)
    for t in range(200, 800, 60):
        p = plan(s, status, SERVING, I, at(t))
        status = p.status
        assert p.status["stableVersion"] == "v1"
        if p.status["phase"] != "Holding":
            break
    assert status["phase"] == phase and t - 200 >= 300  # only after onInconclusive.after (5m)


def test_pause_holds_the_weight_and_resume_restarts_the_step_timer():
    p = plan(spec(paused=True), progressing(step=1, weight=50), SERVING, None, at(500))
    assert p.status["phase"] == "Paused" and p.traffic.canary_weight == 50 and p.requeue_after is None
    assert not analysis_due(spec(paused=True), p.status, at(900))
    r = plan(spec(), p.status, SERVING, None, at(900))
    assert r.status["phase"] == "Progressing" and r.status["stepStartedAt"] == timestamp(at(900))
    assert [e.reason for e in r.events] == ["Resumed"]


def test_a_policy_pause_resumes_only_on_retry():
    paused = {**progressing(step=1, weight=50), "phase": "Paused", "pausedBy": "policy"}
    assert plan(spec(), paused, SERVING, None, at(900)).status["phase"] == "Paused"
    assert plan(spec(retry=1), paused, SERVING, None, at(900)).status["phase"] == "Progressing"


def test_promote_now_finishes_the_rollout_at_once():
    p = plan(spec(promote="v2"), progressing(step=0), SERVING, None, at(10))
    assert p.status["phase"] == "Promoted" and p.traffic.stable_version == "v2"
    stale = plan(spec(promote="v1"), progressing(step=0), SERVING, None, at(10))  # names another version
    assert stale.status["phase"] == "Progressing"


def test_abort_rolls_back_and_retry_starts_again():
    p = plan(spec(abort=True), progressing(step=1, weight=50), SERVING, None, at(10))
    assert p.status["phase"] == "RolledBack" and p.traffic.canary_weight == 0 and p.traffic.stable_version == "v1"
    assert plan(spec(abort=True, retry=1), p.status, SERVING, None, at(20)).status["phase"] == "RolledBack"
    assert plan(spec(), p.status, SERVING, None, at(20)).status["phase"] == "RolledBack"
    r = plan(spec(retry=1), p.status, SERVING, None, at(30))
    assert r.status["phase"] == "Progressing" and r.traffic.canary_weight == 5 and r.status["currentStep"] == 0


def test_a_new_version_mid_rollout_restarts_with_the_new_candidate():
    p = plan(spec(version="v3", storage_uri="pvc://m/cancer/v3"), progressing(step=1, weight=50), SERVING, None, at(10))
    assert p.status["canaryVersion"] == "v3" and p.traffic.canary_weight == 5
    assert [e.reason for e in p.events] == ["RolloutRestarted", "RolloutStarted"]


def test_reverting_the_wanted_version_to_stable_cancels_a_rollback():
    rolled = {**progressing(step=1), "phase": "RolledBack", "canaryWeight": 0}
    p = plan(spec(version="v1"), rolled, SERVING, None, at(10))
    assert p.status["phase"] == "Idle" and p.traffic.canary_version is None


@pytest.mark.parametrize("status", [
    progressing(step=1, weight=50, started=100),
    {**progressing(step=1, weight=50), "phase": "Holding", "inconclusiveSince": timestamp(at(50))},
    {**progressing(step=1, weight=50), "phase": "Paused", "pausedBy": "policy"},
    {**progressing(step=1), "phase": "RolledBack", "canaryWeight": 0},
    {"phase": "Promoted", "stableVersion": "v2", "stableStorageUri": "pvc://m/cancer/v2", "canaryWeight": 0},
])
def test_resuming_from_any_status_keeps_the_step_and_is_idempotent(status):
    """A restarted operator plans from status alone: no reset to step 0, and planning again
    with the same inputs changes nothing."""
    first = plan(spec(), status, SERVING, None, at(130))
    assert first.status.get("currentStep") == status.get("currentStep")
    assert first.traffic.canary_weight == int(status.get("canaryWeight") or 0)
    second = plan(spec(), first.status, SERVING, None, at(130))
    assert second.status == first.status and second.events == ()


@pytest.mark.parametrize("weight, expected", [(0, (0, 0)), (5, (1, 1)), (50, (1, 10)), (100, (2, 20))])
def test_canary_capacity_follows_its_traffic_share(weight, expected):
    assert capacity(AutoscalingSpec(min_replicas=2, max_replicas=20), weight) == expected


@pytest.mark.parametrize("before", ["Progressing", "Paused", "RolledBack", "Promoted", None])
def test_a_failed_rollout_carries_on_from_where_it_was_once_the_spec_is_usable(before):
    status = progressing(step=1, weight=50, phase="Failed", resumePhase=before, message="spec.strategy.steps: ...")
    out = plan(spec(paused=before == "Paused"), status, SERVING, None, at(10))
    assert out.status["phase"] == (before or "Progressing") and out.status["resumePhase"] is None
    assert out.status["currentStep"] == 1 and out.status["canaryWeight"] == 50          # nothing reset
