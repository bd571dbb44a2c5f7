"""The planner's evaluation step: the candidate runs at 0% until the holdout says it may take traffic."""
import dataclasses

import pytest

from modelrollout.analysis import ERROR, FAIL, PASS, Verdict
from modelrollout.planner import plan
from modelrollout.schedule import POLL_APPLIED, evaluation_due, timestamp
from modelrollout.spec import parse_spec

from .test_planner import SERVING, T0, at, spec as plain_spec

EVALUATION = {"dataset": {"configMap": "holdout"}, "metric": "accuracy", "margin": 0.01}
PASSED = Verdict(PASS, "accuracy on 114 holdout rows: candidate 0.97, stable 0.96",
                 {"metric": "accuracy", "candidate": 0.97, "stable": 0.96, "margin": 0.01, "rows": 114})
FAILED = Verdict(FAIL, "accuracy on 114 holdout rows: candidate 0.66, stable 0.97, worse by 0.31",
                 {"metric": "accuracy", "candidate": 0.66, "stable": 0.97, "margin": 0.01, "rows": 114})
UNREACHABLE = Verdict(ERROR, "candidate: connection refused")


def spec(**changes):
    base = parse_spec({"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "pvc://m/cancer/v2"},
                       "strategy": {"steps": [{"weight": 5}, {"weight": 50}, {"weight": 100}], "interval": "1m"},
                       "analysis": {"prometheus": {"url": "http://p"}}, "evaluation": EVALUATION})
    return dataclasses.replace(base, **changes)


def evaluating(**extra):
    return {**plan(spec(), {}, SERVING, None, T0).status, **extra}


def test_a_rollout_with_an_evaluation_starts_with_the_candidate_deployed_at_zero_percent():
    p = plan(spec(), {}, SERVING, None, T0)
    assert p.status["phase"] == "Evaluating" and p.status["canaryVersion"] == "v2"
    assert (p.traffic.canary_weight, p.traffic.evaluating) == (0, True)      # the router writes the template at 0%
    assert [e.reason for e in p.events] == ["EvaluationStarted"]
    assert p.requeue_after == POLL_APPLIED


def test_without_an_evaluation_the_first_step_takes_traffic_at_once():
    p = plan(plain_spec(), {}, SERVING, None, T0)
    assert p.status["phase"] == "Progressing" and p.traffic.canary_weight == 5 and not p.traffic.evaluating


def test_a_passed_evaluation_records_its_scores_and_starts_the_first_step():
    p = plan(spec(), evaluating(), SERVING, PASSED, at(30), applied=True)
    assert p.status["phase"] == "Progressing" and p.traffic.canary_weight == 5 and not p.traffic.evaluating
    assert p.status["evaluation"] == {**PASSED.to_status(timestamp(at(30))), "version": "v2", "stableVersion": "v1"}
    assert [e.reason for e in p.events] == ["EvaluationPassed"]
    assert p.status["stepStartedAt"] is None            # the step's hold waits for KServe to serve 5%


def test_a_failed_evaluation_rolls_back_before_any_traffic_and_says_why():
    p = plan(spec(), evaluating(), SERVING, FAILED, at(30), applied=True)
    assert p.status["phase"] == "RolledBack" and p.traffic.canary_weight == 0 and not p.traffic.evaluating
    assert p.status["evaluation"]["verdict"] == FAIL and p.status["evaluation"]["candidate"] == 0.66
    assert [e.reason for e in p.events] == ["EvaluationFailed", "RolledBack"]
    assert "worse by 0.31" in p.status["message"]
    # and it stays rolled back until retried, when it is evaluated again
    again = plan(spec(), p.status, SERVING, None, at(60))
    assert again.status["phase"] == "RolledBack"
    retried = plan(spec(retry=1), p.status, SERVING, None, at(90))
    assert retried.status["phase"] == "Evaluating" and retried.status["evaluation"] is None


def test_an_evaluation_that_cannot_run_is_tried_again_each_interval_then_rolls_back():
    status, limit = evaluating(), spec().analysis.consecutive_error_limit
    for i in range(1, limit):
        p = plan(spec(), status, SERVING, UNREACHABLE, at(60 * i), applied=True)
        assert p.status["phase"] == "Evaluating" and p.status["errors"] == i and p.traffic.evaluating
        assert [e.reason for e in p.events] == ["EvaluationError"] and "connection refused" in p.status["message"]
        assert p.requeue_after == 60.0
        assert not evaluation_due(spec(), p.status, at(60 * i + 59)) and evaluation_due(spec(), p.status, at(60 * i + 60))
        status = p.status
    p = plan(spec(), status, SERVING, UNREACHABLE, at(60 * limit), applied=True)
    assert p.status["phase"] == "RolledBack" and "could not run 4 times" in p.status["message"]


def test_kserve_not_running_the_candidate_within_the_progress_deadline_rolls_back():
    status = evaluating()
    waiting = plan(spec(), status, SERVING, None, at(599), applied=False, pending="revision not ready")
    assert waiting.status["phase"] == "Evaluating"
    late = plan(spec(), status, SERVING, None, at(600), applied=False, pending="revision not ready")
    assert late.status["phase"] == "RolledBack"
    assert "run the candidate at 0% with an address of its own" in late.status["message"]
    assert "revision not ready" in late.status["message"]


@pytest.mark.parametrize("change", [{"paused": True}, {"abort": True}, {"promote": "v2"}, {"version": "v3"}])
def test_the_evaluation_is_not_due_while_the_user_has_said_otherwise(change):
    assert evaluation_due(spec(), evaluating(), T0)
    assert not evaluation_due(spec(**change), evaluating(), T0)


def test_pausing_during_the_evaluation_and_resuming_evaluates_again_instead_of_taking_traffic():
    paused = plan(spec(paused=True), evaluating(), SERVING, None, at(10))
    assert paused.status["phase"] == "Paused" and paused.traffic.canary_weight == 0
    resumed = plan(spec(), paused.status, SERVING, None, at(20))
    assert resumed.status["phase"] == "Evaluating" and resumed.traffic.canary_weight == 0
    # a candidate that passed and was paused mid-traffic resumes at its weight, not evaluated again
    passed = plan(spec(), evaluating(), SERVING, PASSED, at(30), applied=True).status
    paused = plan(spec(paused=True), {**passed, "stepStartedAt": timestamp(at(40))}, SERVING, None, at(50))
    assert plan(spec(), paused.status, SERVING, None, at(60)).status["phase"] == "Progressing"


def test_a_candidate_started_while_paused_is_evaluated_when_un_paused():
    waiting = plan(spec(paused=True), {}, SERVING, None, T0)
    assert waiting.status["phase"] == "Paused" and not waiting.traffic.evaluating   # the template is not touched yet
    assert plan(spec(), waiting.status, SERVING, None, at(5)).status["phase"] == "Evaluating"


def test_abort_and_promote_still_work_during_the_evaluation():
    assert plan(spec(abort=True), evaluating(), SERVING, None, at(5)).status["phase"] == "RolledBack"
    assert plan(spec(promote="v2"), evaluating(), SERVING, None, at(5)).status["phase"] == "Promoted"
