import dataclasses
import datetime as dt

import pytest

from modelrollout.analysis import ERROR, FAIL, INCONCLUSIVE, PASS, Verdict
from modelrollout.planner import plan
from modelrollout.schedule import POLL_APPLIED, analysis_due, timestamp
from modelrollout.spec import Step, parse_spec

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
    assert [e.reason for e in p.events] == ["RolloutStarted"]
    # the hold has not started: it waits for KServe to serve 5%, looking again soon
    assert p.status["stepStartedAt"] is None and p.status["stepRequestedAt"] == timestamp(T0) and p.requeue_after == POLL_APPLIED


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
    (progressing(step=1, weight=50), P, "Promoted", 0, None, ["Promoted"]),   # 100% is the promotion, not a step
    (progressing(step=2, weight=100), P, "Promoted", 0, None, ["Promoted"]),  # (a status written before that rule)
    (progressing(step=1, weight=50), F, "RolledBack", 0, 1, ["RolledBack"]),
    (progressing(step=1, weight=50), I, "Holding", 50, 1, ["AnalysisInconclusive"]),
    ({**progressing(step=1, weight=50), "phase": "Holding", "inconclusiveSince": timestamp(at(0))}, P, "Promoted", 0, None, ["Promoted"]),
])
def test_verdict_transitions(status, verdict, phase, weight, step, reasons):
    p = plan(spec(), status, SERVING, verdict, at(200))
    assert p.status["phase"] == phase
    assert p.traffic.canary_weight == weight and p.status.get("currentStep") == step
    assert [e.reason for e in p.events] == reasons
    assert p.status["lastAnalysis"]["verdict"] == verdict.outcome


def test_promotion_makes_the_candidate_stable_and_clears_the_canary():
    p = plan(spec(), progressing(step=1, weight=50), SERVING, P, at(200))
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
    assert p.traffic.canary_weight == 0                 # audit: a pause kept the unjudged candidate's share


def test_a_policy_pause_at_zero_resumes_at_its_step_on_retry():
    s = spec(analysis=dataclasses.replace(spec().analysis, inconclusive_after=0.0))
    paused = plan(s, progressing(step=1, weight=50), SERVING, I, at(200)).status
    assert (paused["phase"], paused["canaryWeight"], paused["currentStep"]) == ("Paused", 0, 1)
    assert "the candidate at 0%" in paused["message"]
    retried = plan(dataclasses.replace(s, retry=1), paused, SERVING, None, at(300))
    assert retried.status["phase"] == "Progressing" and retried.traffic.canary_weight == 50
    assert retried.status["stepStartedAt"] is None                 # its hold waits for KServe to serve 50% again


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


def test_a_rollout_whose_only_step_is_100_percent_promotes_at_once():
    p = plan(spec(steps=(Step(100),)), {}, SERVING, None, T0)
    assert p.status["phase"] == "Promoted" and p.traffic.stable_version == "v2" and p.traffic.canary_version is None
    assert [e.reason for e in p.events] == ["RolloutStarted", "Promoted"]


@pytest.mark.parametrize("steps, step, weight, to_step, to_weight", [
    ((10, 100), 2, 50, 0, 10),            # the old step is gone and 100 is promotion: back to the last real step
    ((10, 30, 60, 100), 1, 50, 2, 60),    # the first step at or above the current weight
    ((50, 100), 1, 50, 0, 50),            # same weight, new index
])
def test_steps_edited_mid_rollout_snap_to_a_step_and_say_so(steps, step, weight, to_step, to_weight):
    edited = spec(steps=tuple(Step(w) for w in steps))
    status = progressing(step=step, weight=weight)
    assert analysis_due(edited, status, at(10)) is False            # no IndexError, and the hold restarts
    p = plan(edited, status, SERVING, None, at(10))
    assert (p.status["currentStep"], p.traffic.canary_weight, p.status["phase"]) == (to_step, to_weight, "Progressing")
    assert [e.reason for e in p.events] == ["StepsChanged"] and p.status["stepStartedAt"] is None


@pytest.mark.parametrize("before", ["Progressing", "Paused", "RolledBack", "Promoted", None])
def test_a_failed_rollout_carries_on_from_where_it_was_once_the_spec_is_usable(before):
    status = progressing(step=1, weight=50, phase="Failed", resumePhase=before, message="spec.strategy.steps: ...")
    out = plan(spec(paused=before == "Paused"), status, SERVING, None, at(10))
    assert out.status["phase"] == (before or "Progressing") and out.status["resumePhase"] is None
    assert out.status["currentStep"] == 1 and out.status["canaryWeight"] == 50          # nothing reset


# -- a step's hold starts when KServe serves it (operator-review B8) ------------------------------

def requested(step=0, weight=5, asked=0):
    return {**progressing(step=step, weight=weight), "stepStartedAt": None, "stepRequestedAt": timestamp(at(asked))}


def test_a_step_is_not_analysed_until_kserve_serves_its_weight():
    waiting = requested()
    assert not analysis_due(spec(), waiting, at(900))
    still = plan(spec(), waiting, SERVING, None, at(30), applied=False)
    assert still.status["stepStartedAt"] is None and still.requeue_after == POLL_APPLIED and still.events == ()
    served = plan(spec(), waiting, SERVING, None, at(40), applied=True)
    assert served.status["stepStartedAt"] == timestamp(at(40)) and served.requeue_after == 120
    assert not analysis_due(spec(), served.status, at(159)) and analysis_due(spec(), served.status, at(160))


def test_after_a_crash_between_status_and_patch_the_new_step_waits_for_its_own_traffic():
    """Status says 50% (asked), KServe still serves 5%: no verdict on 5% traffic can advance 50%."""
    advanced = plan(spec(), progressing(), SERVING, P, at(200)).status
    assert advanced["canaryWeight"] == 50 and advanced["stepStartedAt"] is None
    assert not analysis_due(spec(), advanced, at(10_000))


def test_a_step_never_served_rolls_back_at_the_progress_deadline():
    s = spec(progress_deadline=300)
    assert plan(s, requested(), SERVING, None, at(299)).status["phase"] == "Progressing"
    p = plan(s, requested(), SERVING, None, at(300))
    assert p.status["phase"] == "RolledBack" and "progress deadline" in p.status["message"]
    assert p.traffic.canary_weight == 0


def seconds(window) -> float:
    start, end, _ = window
    return (end - start).total_seconds()


def test_the_analysis_window_never_reaches_before_the_step_was_served_nor_into_a_window_read():
    from modelrollout.schedule import analysis_window
    status = progressing(started=100)
    assert seconds(analysis_window(spec(), status, at(130))) == 30          # spec window 60s, served 30s ago
    assert seconds(analysis_window(spec(), status, at(500))) == 60
    assert analysis_window(spec(), status, at(500))[2] == at(100)           # since: the step's start
    read = {**status, "measuredTo": timestamp(at(470))}
    assert seconds(analysis_window(spec(), read, at(500))) == 30


def test_a_look_waits_for_two_whole_scrape_intervals_to_read():
    """After a step starts its first scrape may come a whole interval late: three intervals hold two
    increments; after a window read, the next continues from it: two."""
    from modelrollout.schedule import requeue_after
    slow = spec()
    slow = dataclasses.replace(slow, analysis=dataclasses.replace(slow.analysis, scrape_interval=60.0))
    status = progressing(started=0)
    assert not analysis_due(slow, status, at(120)) and analysis_due(slow, status, at(180))
    assert requeue_after(slow, status, at(120)) == 60
    read = {**status, "measuredTo": timestamp(at(180)), "lastAnalysis": {"time": timestamp(at(180))}}
    assert not analysis_due(slow, read, at(290)) and analysis_due(slow, read, at(300))    # hold 2m, two scrapes


def test_inconclusive_keeps_the_window_and_holds_again_from_the_look():
    p = plan(spec(), progressing(started=0), SERVING, I, at(120))
    assert p.status["stepStartedAt"] == timestamp(at(0)) and p.status["phase"] == "Holding"
    assert not analysis_due(spec(), p.status, at(179)) and analysis_due(spec(), p.status, at(240))
    again = plan(spec(), p.status, SERVING, I, at(240))
    assert again.events == () and again.status["phase"] == "Holding"     # one event when holding starts


def test_a_steps_first_tested_look_has_its_planned_share_and_later_ones_extra_shares():
    from modelrollout import stats
    from modelrollout.schedule import look_alpha
    tested = Verdict(INCONCLUSIVE, "bounds straddle the limit", {"evidence": {"canary": {"requests": 900}}}, tested=True)
    assert look_alpha(spec(), progressing()) == stats.look_alpha(0.05, 2, 1)          # step 1 of 2 analysed
    assert look_alpha(spec(), progressing(step=1, weight=50)) == stats.look_alpha(0.05, 2, 2)
    p = plan(spec(), progressing(started=0), SERVING, tested, at(120))
    assert p.status["looks"] == 1 and p.status["testedAt"] == timestamp(at(120)) and p.status["extraLooks"] == 0
    assert look_alpha(spec(), p.status) == stats.look_alpha(0.05, 2, 3)               # the first extra share
    again = plan(spec(), p.status, SERVING, tested, at(180))
    assert again.status["extraLooks"] == 1 and look_alpha(spec(), again.status) == stats.look_alpha(0.05, 2, 4)


WINDOW_READ = {"evidence": {"canary": {"requests": 900, "errors": 3}}, "window": ["2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"]}


@pytest.mark.parametrize("verdict", [Verdict(PASS, "ok", WINDOW_READ, tested=True),
                                     Verdict(INCONCLUSIVE, "too few", WINDOW_READ),
                                     Verdict(FAIL, "bad", WINDOW_READ, tested=True)])
def test_every_window_read_joins_the_evidence_whatever_its_verdict(verdict):
    """audit: only Pass and Fail windows were kept, so an Inconclusive window's errors were lost."""
    p = plan(spec(), progressing(started=0), SERVING, verdict, at(120))
    assert p.status["evidence"] == WINDOW_READ["evidence"] and p.status["measuredTo"] == "2026-01-01T00:02:00Z"
    assert "evidence" not in p.status["lastAnalysis"]
    unread = plan(spec(), p.status, SERVING, Verdict(ERROR, "metrics unavailable"), at(240)).status
    assert unread.get("evidence") == p.status["evidence"] and unread["measuredTo"] == p.status["measuredTo"]


def test_a_rollout_spends_at_most_its_significance_over_every_look():
    from modelrollout.schedule import look_alpha
    s = spec()
    first = [look_alpha(s, progressing(step=k)) for k in range(2)]
    extra = [look_alpha(s, progressing(testedAt=timestamp(T0), extraLooks=n)) for n in range(1000)]
    assert sum(first) + sum(extra) <= s.analysis.significance


def test_a_new_step_judges_from_its_start_and_a_new_rollout_starts_a_new_budget():
    from modelrollout.schedule import analysis_window
    status = progressing(started=0, looks=3, testedAt=timestamp(at(100)), evidence={"canary": {"requests": 1}},
                         measuredTo=timestamp(at(100)))
    advanced = plan(spec(), status, SERVING, P, at(130)).status
    assert advanced["testedAt"] is None and advanced["looks"] == 3 and advanced["evidence"] == {"canary": {"requests": 1}}
    served = plan(spec(), advanced, SERVING, None, at(140), applied=True).status
    assert seconds(analysis_window(spec(), served, at(170))) == 30
    restarted = plan(spec(version="v3", storage_uri="pvc://m/cancer/v3"), status, SERVING, None, at(130)).status
    assert restarted["looks"] == 0 and restarted["evidence"] is None and restarted["measuredTo"] is None


# -- commands and edits (operator-review B11, B13) ------------------------------------------------

def test_abort_wins_over_a_new_version():
    p = plan(spec(version="v3", storage_uri="pvc://m/cancer/v3", abort=True), progressing(step=1, weight=50), SERVING, None, at(10))
    assert p.status["phase"] == "RolledBack" and p.traffic.canary_weight == 0
    again = plan(spec(version="v3", storage_uri="pvc://m/cancer/v3", abort=True), p.status, SERVING, None, at(20))
    assert again.status["phase"] == "RolledBack" and again.traffic.canary_weight == 0
    assert [e.reason for e in again.events] == ["AbortSet"]


def test_a_new_version_while_paused_waits_at_zero_and_starts_on_resume():
    p = plan(spec(version="v3", storage_uri="pvc://m/cancer/v3", paused=True), {}, SERVING, None, T0)
    assert p.status["phase"] == "Paused" and p.status["canaryVersion"] == "v3" and p.traffic.canary_weight == 0
    r = plan(spec(version="v3", storage_uri="pvc://m/cancer/v3"), p.status, SERVING, None, at(10))
    assert r.status["phase"] == "Progressing" and r.traffic.canary_weight == 5 and r.status["stepStartedAt"] is None


def test_a_new_version_started_paused_keeps_nothing_of_the_earlier_candidates_guard_looks():
    earlier = progressing(step=1, weight=50, guardLooks=4, guardedAt=timestamp(at(5)), gateCheckedAt=timestamp(at(5)))
    v3 = dict(version="v3", storage_uri="pvc://m/cancer/v3")
    paused = plan(spec(**v3, paused=True), earlier, SERVING, None, at(10)).status
    assert (paused["guardLooks"], paused["guardedAt"], paused["gateCheckedAt"]) == (0, None, None)
    resumed = plan(spec(**v3), paused, SERVING, None, at(20)).status     # its guard looks spend a fresh budget
    assert resumed["phase"] == "Progressing" and resumed["guardLooks"] == 0


def test_a_retry_raised_mid_rollout_is_recorded_and_cannot_restart_a_later_rollback():
    p = plan(spec(retry=1), progressing(step=1, weight=50), SERVING, None, at(10))
    assert p.status["retry"] == 1
    failed = plan(spec(retry=1), p.status, SERVING, F, at(200))
    assert failed.status["phase"] == "RolledBack"
    assert plan(spec(retry=1), failed.status, SERVING, None, at(210)).status["phase"] == "RolledBack"


def test_a_new_storage_uri_for_the_same_version_restarts_the_rollout():
    p = plan(spec(storage_uri="pvc://m/cancer/v2-fixed"), progressing(step=1, weight=50), SERVING, None, at(10))
    assert p.status["canaryStorageUri"] == "pvc://m/cancer/v2-fixed" and p.traffic.canary_weight == 5
    assert [e.reason for e in p.events] == ["RolloutRestarted", "RolloutStarted"]


def test_unpausing_does_not_reset_the_inconclusive_clock():
    holding = {**progressing(step=1, weight=50), "phase": "Holding", "inconclusiveSince": timestamp(at(0))}
    paused = plan(spec(paused=True), holding, SERVING, None, at(100)).status
    resumed = plan(spec(), paused, SERVING, None, at(110)).status
    assert resumed["inconclusiveSince"] == timestamp(at(0))


def test_metrics_errors_count_apart_and_roll_back_at_their_limit():
    E = Verdict(ERROR, "metrics unavailable: connection refused")
    status = progressing(step=1, weight=50)
    for i in range(1, 4):
        status = plan(spec(), status, SERVING, E, at(100 * i)).status
        assert status["phase"] == "Holding" and status["errors"] == i and status["failures"] == 0
    assert plan(spec(), status, SERVING, E, at(400)).status["phase"] == "RolledBack"
    assert plan(spec(), status, SERVING, P, at(400)).status.get("errors") == 0


def test_a_step_advance_resets_failures():
    s = spec(analysis=dataclasses.replace(spec().analysis, failure_limit=2))
    failed_once = plan(s, progressing(), SERVING, F, at(200)).status
    advanced = plan(s, failed_once, SERVING, P, at(400)).status
    assert advanced["currentStep"] == 1 and advanced["failures"] == 0


CHANGED = "InferenceService 'cancer' was changed by kubectl-replace (Update at ...) mid-rollout"
BLOCKED = "KServe sends what a canary does not take to revision r2 (latestRolledoutRevision), which runs v2"


@pytest.mark.parametrize("status, external, blocked, reasons", [
    (progressing(), CHANGED, None, ["ExternalChange", "RolledBack"]),
    ({**progressing(), "phase": "Holding"}, CHANGED, BLOCKED, ["ExternalChange", "RolledBack"]),
    ({**progressing(), "phase": "Paused", "pausedBy": "spec"}, None, BLOCKED, ["ServingMismatch", "RolledBack"]),
    ({**progressing(weight=0), "phase": "Evaluating", "stepRequestedAt": timestamp(T0)}, None, BLOCKED,
     ["ServingMismatch", "RolledBack"]),
])
def test_a_canary_whose_split_kserve_no_longer_routes_is_rolled_back_whatever_was_measured(status, external, blocked, reasons):
    p = plan(spec(paused=status["phase"] == "Paused"), status, SERVING, P, at(600), applied=True, external=external,
             blocked=blocked)
    assert p.status["phase"] == "RolledBack" and p.traffic.canary_weight == 0
    assert [e.reason for e in p.events] == reasons and all(e.type == "Warning" for e in p.events)
    assert (external or blocked) in p.status["message"] and p.status["servingVerified"] is None


@pytest.mark.parametrize("status", [{}, {"phase": "Promoted", "stableVersion": "v1", "stableStorageUri": SERVING[1]},
                                    {**progressing(weight=0), "phase": "RolledBack", "stepStartedAt": None}])
def test_a_candidate_waits_while_what_it_would_not_take_would_not_go_to_stable(status):
    p = plan(spec(retry=1), status, SERVING, None, T0, blocked=BLOCKED)
    assert p.status["phase"] == "Waiting" and p.status["resumePhase"] == (status.get("phase") or "Idle")
    assert p.traffic.canary_weight == 0 and not p.traffic.evaluating and BLOCKED in p.status["message"]
    assert [(e.type, e.reason) for e in p.events] == [("Normal", "StableNotRolledOut")]
    later = plan(spec(retry=1), p.status, SERVING, None, at(30))             # KServe has rolled stable out
    assert later.status["phase"] == "Progressing" and later.traffic.canary_weight == 5


def test_an_external_change_outside_a_rollout_is_none_of_its_business():
    idle = {"phase": "Promoted", "stableVersion": "v2", "stableStorageUri": "pvc://m/cancer/v2"}
    p = plan(spec(), idle, SERVING, None, T0, external=CHANGED, blocked=BLOCKED)
    assert p.status["phase"] == "Promoted" and p.events == ()
