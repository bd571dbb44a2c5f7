"""The webhooks' gates in the plan: pre-rollout before any traffic, confirm-promotion before the
promotion, rollback hooks at each look (webhooks.py); the schedule that asks them."""
import dataclasses

from modelrollout.planner import plan, traffic_of
from modelrollout.schedule import analysis_due, gate_due, rollback_hooks_due, timestamp
from modelrollout.webhooks import Answer, HookAnswers, parse_webhooks

from .test_planner import P, SERVING, T0, at, progressing, spec

YES, NO = Answer(True, "1 webhook(s) answered 2xx"), Answer(False, "webhook 'smoke' answered 503")


def hooked(*types):
    return spec(webhooks=parse_webhooks([{"name": t, "type": t, "url": "http://127.0.0.1:1/"} for t in types]))


def test_a_pre_rollout_hook_keeps_the_candidate_at_zero_until_it_answers_2xx():
    p = plan(hooked("pre-rollout"), {}, SERVING, None, T0)
    assert p.status["gate"] == "pre-rollout" and p.status["canaryWeight"] == 0
    assert (p.traffic.canary_version, p.traffic.canary_weight, p.traffic.evaluating) == ("v2", 0, True)   # deployed at 0%
    assert "at 0% until the pre-rollout webhooks answer 2xx" in p.status["message"]
    again = plan(hooked("pre-rollout"), p.status, SERVING, None, at(30), applied=True)      # not asked yet
    assert again.status == p.status and not again.events
    passed = plan(hooked("pre-rollout"), p.status, SERVING, None, at(30), applied=True, hooks=HookAnswers(YES))
    assert passed.status["gate"] is None and passed.status["canaryWeight"] == 5 and passed.status["preRolloutPassed"] == "v2"
    assert [e.reason for e in passed.events] == ["PreRolloutPassed"] and passed.status["stepRequestedAt"] == timestamp(at(30))
    assert passed.traffic.canary_weight == 5 and not passed.traffic.evaluating


def test_a_refusing_pre_rollout_hook_counts_as_an_error_and_rolls_back_at_the_limit():
    s = plan(hooked("pre-rollout"), {}, SERVING, None, T0).status
    for n in range(1, 4):
        p = plan(hooked("pre-rollout"), s, SERVING, None, at(60 * n), applied=True, hooks=HookAnswers(NO))
        s = p.status
        assert s["phase"] == "Progressing" and s["errors"] == n and s["canaryWeight"] == 0
        assert [e.reason for e in p.events] == ["WebhookRefused"] and f"({n}/4)" in s["message"]
    p = plan(hooked("pre-rollout"), s, SERVING, None, at(240), applied=True, hooks=HookAnswers(NO))
    assert p.status["phase"] == "RolledBack" and p.status["gate"] is None
    assert "the pre-rollout webhooks refused 4 times in a row: webhook 'smoke' answered 503" in p.status["message"]
    assert p.traffic.canary_weight == 0 and not p.traffic.evaluating                    # the candidate is removed


def test_a_candidate_never_ready_at_zero_misses_the_progress_deadline():
    s = plan(hooked("pre-rollout"), {}, SERVING, None, T0).status
    p = plan(hooked("pre-rollout"), s, SERVING, None, at(601), applied=False, pending="revision not ready")
    assert p.status["phase"] == "RolledBack" and "within the progress deadline" in p.status["message"]


def test_a_passed_pre_rollout_is_not_asked_again_for_the_same_candidate():
    s = {**progressing(step=0, weight=0, started=0), "phase": "Paused", "pausedBy": "spec", "preRolloutPassed": "v2",
         "stepStartedAt": None}
    p = plan(hooked("pre-rollout"), s, SERVING, None, at(10))
    assert p.status["phase"] == "Progressing" and p.status["canaryWeight"] == 5 and not p.status.get("gate")


def test_confirm_promotion_holds_the_last_step_until_the_hooks_agree():
    s = progressing(step=1, weight=50, started=0)
    waiting = plan(hooked("confirm-promotion"), s, SERVING, P, at(60))
    assert waiting.status["phase"] == "Progressing" and waiting.status["gate"] == "confirm-promotion"
    assert waiting.traffic.canary_weight == 50 and [e.reason for e in waiting.events] == ["AwaitingConfirmation"]
    assert not analysis_due(hooked("confirm-promotion"), waiting.status, at(600))      # no more looks meanwhile
    assert gate_due(hooked("confirm-promotion"), waiting.status, at(61))
    refused = plan(hooked("confirm-promotion"), waiting.status, SERVING, None, at(61), hooks=HookAnswers(NO))
    assert refused.status["phase"] == "Progressing" and refused.status["errors"] == 1
    assert refused.status["gateCheckedAt"] == timestamp(at(61)) and not gate_due(hooked("confirm-promotion"), refused.status, at(100))
    promoted = plan(hooked("confirm-promotion"), refused.status, SERVING, None, at(121), hooks=HookAnswers(YES))
    assert promoted.status["phase"] == "Promoted" and promoted.status["stableVersion"] == "v2"
    assert "confirm-promotion webhooks answered 2xx" in promoted.status["message"]


def test_a_rollback_hook_answering_2xx_rolls_back_at_any_step():
    s = progressing(step=1, weight=50, started=0)
    assert rollback_hooks_due(hooked("rollback"), s, at(1))
    p = plan(hooked("rollback"), s, SERVING, None, at(1),
             hooks=HookAnswers(rollback="webhook 'stop' answered 200", rollback_checked=True))
    assert p.status["phase"] == "RolledBack" and [e.reason for e in p.events] == ["WebhookRollback", "RolledBack"]
    carry_on = plan(hooked("rollback"), s, SERVING, None, at(1), hooks=HookAnswers(rollback_checked=True))
    assert carry_on.status["phase"] == "Progressing" and carry_on.status["rollbackCheckedAt"] == timestamp(at(1))
    assert not rollback_hooks_due(hooked("rollback"), carry_on.status, at(30))
    assert carry_on.requeue_after <= 60


def test_without_webhooks_nothing_changes():
    p = plan(spec(), {}, SERVING, None, T0)
    assert p.status["canaryWeight"] == 5 and not p.status.get("gate") and not traffic_of(p.status).evaluating
    assert not gate_due(spec(), p.status, at(99)) and not rollback_hooks_due(spec(), p.status, at(99))
    assert dataclasses.replace(spec()).webhooks == ()
