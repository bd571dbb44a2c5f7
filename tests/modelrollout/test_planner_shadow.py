"""The planner's shadow step: the candidate runs at 0% while stable mirrors requests to it, and
takes traffic only once the paired answers pass."""
import dataclasses

from modelrollout.analysis import ERROR, FAIL, INCONCLUSIVE, PASS, Verdict
from modelrollout.planner import plan
from modelrollout.schedule import POLL_APPLIED, analysis_budget, shadow_due, shadow_look_alpha, timestamp
from modelrollout.spec import parse_spec

from .test_planner import SERVING, T0, at
from .test_planner_evaluation import EVALUATION, PASSED

SHADOW = {"fraction": 0.2, "minPairs": 100, "maxDisagreement": 0.05, "duration": "5m"}
AGREES = Verdict(PASS, "shadow: probabilities disagrees on 1.00% of 400, below 5.00%",
                 {"outputs": {"probabilities": {"pairs": 400, "disagreement": 0.01}}}, tested=True)
DIFFERS = Verdict(FAIL, "shadow: output probabilities disagrees with stable on 40.00% of 400 paired predictions",
                  {"outputs": {"probabilities": {"pairs": 400, "disagreement": 0.4}}}, tested=True)
FEW = Verdict(INCONCLUSIVE, "shadow: 30 < 100 paired predictions of output probabilities", {}, tested=True)
NOTHING = Verdict(INCONCLUSIVE, "no mirrored request has been answered yet")
UNREADABLE = Verdict(ERROR, "Prometheus: connection refused")


def spec(shadow=SHADOW, evaluation=None, **changes):
    raw = {"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "pvc://m/cancer/v2"},
           "strategy": {"steps": [{"weight": 5}, {"weight": 50}, {"weight": 100}], "interval": "1m", "shadow": shadow},
           "analysis": {"prometheus": {"url": "http://p"}, "onInconclusive": {"after": "5m"}}}
    if evaluation:
        raw["evaluation"] = evaluation
    return dataclasses.replace(parse_spec(raw), **changes)


def mirroring(seconds=10, **changes):
    """Shadowing, with the mirror on since `seconds` after T0."""
    started = plan(spec(**changes), {}, SERVING, None, T0).status
    return plan(spec(**changes), started, SERVING, None, at(seconds), applied=True).status


def test_a_rollout_with_a_shadow_step_starts_with_the_candidate_at_zero_percent_and_its_own_address():
    p = plan(spec(), {}, SERVING, None, T0)
    assert p.status["phase"] == "Shadowing" and p.status["canaryVersion"] == "v2"
    assert (p.traffic.canary_weight, p.traffic.evaluating) == (0, True)      # written at 0%, tag routing gives the address
    assert [e.reason for e in p.events] == ["ShadowStarted"] and "mirrors 20%" in p.status["message"]
    assert p.status.get("shadowStartedAt") is None and p.requeue_after == POLL_APPLIED


def test_the_mirror_starts_once_both_versions_have_addresses_and_the_first_look_waits_an_interval():
    p = plan(spec(), plan(spec(), {}, SERVING, None, T0).status, SERVING, None, at(10), applied=True)
    assert p.status["phase"] == "Shadowing" and p.status["shadowStartedAt"] == timestamp(at(10)) and p.rule == "mirror"
    assert p.traffic.canary_weight == 0 and p.requeue_after == 60.0
    assert not shadow_due(spec(), p.status, at(69)) and shadow_due(spec(), p.status, at(70))


def test_agreeing_answers_start_the_first_step_and_are_kept_in_status():
    p = plan(spec(), mirroring(), SERVING, AGREES, at(70), applied=True)
    assert p.status["phase"] == "Progressing" and p.traffic.canary_weight == 5 and not p.traffic.evaluating
    assert [e.reason for e in p.events] == ["ShadowPassed"] and p.rule == "shadowed"
    assert p.status["shadow"] == {**AGREES.to_status(timestamp(at(70))), "version": "v2", "stableVersion": "v1"}
    assert p.status["shadowLooks"] == 1 and p.status["stepStartedAt"] is None     # the step waits for KServe's 5%


def test_disagreeing_answers_roll_back_before_any_traffic():
    p = plan(spec(), mirroring(), SERVING, DIFFERS, at(70), applied=True)
    assert p.status["phase"] == "RolledBack" and p.traffic.canary_weight == 0 and not p.traffic.evaluating
    assert [e.reason for e in p.events] == ["ShadowFailed", "RolledBack"]
    assert "shadow comparison failed before any traffic" in p.status["message"] and "40.00%" in p.status["message"]
    assert p.status["shadow"]["verdict"] == FAIL
    retried = plan(spec(retry=1), p.status, SERVING, None, at(90))
    assert retried.status["phase"] == "Shadowing" and retried.status["shadow"] is None   # shadowed again from scratch


def test_too_few_pairs_keep_shadowing_until_the_duration_then_the_inconclusive_policy_pauses_at_zero():
    status = mirroring()
    for k, seconds in enumerate((70, 130, 190, 250), start=1):
        p = plan(spec(), status, SERVING, FEW, at(seconds), applied=True)
        assert p.status["phase"] == "Shadowing" and p.events == () and p.status["shadowLooks"] == k
        assert f"shadowing for {seconds - 10}s of 300s" in p.status["message"]
        status = p.status
    assert shadow_due(spec(), status, at(310))          # the look at the duration's end comes on time
    p = plan(spec(), status, SERVING, FEW, at(310), applied=True)
    assert p.status["phase"] == "Paused" and p.status["pausedBy"] == "policy" and p.traffic.canary_weight == 0
    assert [e.reason for e in p.events] == ["InconclusiveTimeout"]
    retried = plan(spec(retry=1), p.status, SERVING, None, at(400))
    assert retried.status["phase"] == "Shadowing" and retried.status["shadowStartedAt"] is None


def test_with_the_rollback_policy_an_inconclusive_shadow_step_rolls_back_at_its_duration():
    s = spec()
    s = dataclasses.replace(s, analysis=dataclasses.replace(s.analysis, inconclusive_action="rollback"))
    p = plan(s, mirroring(), SERVING, NOTHING, at(310), applied=True)
    assert p.status["phase"] == "RolledBack" and "inconclusive after 300s" in p.status["message"]


def test_unreadable_shadow_counts_are_counted_as_errors_and_roll_back_at_the_limit():
    status, limit = mirroring(), spec().analysis.consecutive_error_limit
    for i in range(1, limit):
        p = plan(spec(), status, SERVING, UNREADABLE, at(10 + 60 * i), applied=True)
        assert p.status["phase"] == "Shadowing" and p.status["errors"] == i and p.status["shadowLooks"] == 0
        assert [e.reason for e in p.events] == ["ShadowError"]
        status = p.status
    p = plan(spec(), status, SERVING, UNREADABLE, at(10 + 60 * limit), applied=True)
    assert p.status["phase"] == "RolledBack" and "could not be read 4 times" in p.status["message"]


def test_kserve_not_giving_the_candidate_an_address_within_the_progress_deadline_rolls_back():
    status = plan(spec(), {}, SERVING, None, T0).status
    assert plan(spec(), status, SERVING, None, at(599)).status["phase"] == "Shadowing"
    p = plan(spec(), status, SERVING, None, at(600), pending="the candidate's revision is not ready")
    assert p.status["phase"] == "RolledBack" and "run the candidate at 0% with an address" in p.status["message"]


def test_the_evaluation_comes_first_and_its_pass_starts_the_shadow_step():
    both = spec(evaluation=EVALUATION)
    p = plan(both, {}, SERVING, None, T0)
    assert p.status["phase"] == "Evaluating"
    p = plan(both, p.status, SERVING, PASSED, at(30), applied=True)
    assert p.status["phase"] == "Shadowing" and p.traffic.canary_weight == 0
    assert [e.reason for e in p.events] == ["ShadowStarted"] and p.status["evaluation"]["verdict"] == PASS


def test_a_pause_while_shadowing_stops_the_mirror_and_unpausing_shadows_again():
    p = plan(spec(paused=True), mirroring(), SERVING, None, at(30))
    assert p.status["phase"] == "Paused" and p.traffic.canary_weight == 0
    back = plan(spec(), p.status, SERVING, None, at(90))
    assert back.status["phase"] == "Shadowing" and back.status["shadowStartedAt"] is None
    assert [e.reason for e in back.events] == ["ShadowStarted"]


def test_abort_and_promote_apply_while_shadowing():
    assert plan(spec(abort=True), mirroring(), SERVING, None, at(30)).status["phase"] == "RolledBack"
    promoted = plan(spec(promote="v2"), mirroring(), SERVING, None, at(30))
    assert promoted.status["phase"] == "Promoted" and promoted.status["stableVersion"] == "v2"


def test_the_shadow_looks_spend_their_share_and_the_analysis_keeps_the_rest():
    s = spec()
    assert analysis_budget(s) == 0.05 * (1 - 0.2)
    first, second = shadow_look_alpha(s, {"shadowLooks": 0}), shadow_look_alpha(s, {"shadowLooks": 1})
    assert (first, second) == (0.05 * 0.2 / 2, 0.05 * 0.2 / 6)
    assert analysis_budget(spec(shadow=None)) == 0.05
