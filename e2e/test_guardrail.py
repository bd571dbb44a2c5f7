"""Tier 3: the guardrail rolls back a canary that fails a tenth of its requests during a one-hour
hold, within seconds of its step being served, on the real control plane with real predictors."""
import pytest

from e2e.controlplane.process import wait_for
from e2e.localstack.observe import events_of, phase_in, status_of
from modelrollout.schedule import parse_time
from e2e.localstack.stack import model_rollout

pytestmark = pytest.mark.e2e


def test_a_gross_failure_is_rolled_back_before_the_hold_ends(stack):
    stack.apply(model_rollout("v3-errors", stack.prometheus.url, steps=[{"weight": 50, "hold": "1h"}, {"weight": 100}],
                              guardrail={"maxErrorRate": 0.02}))
    started = wait_for(lambda: status_of(stack.api).get("stepStartedAt"), timeout=120, what="the step served")
    s = wait_for(phase_in(stack.api, "RolledBack", "Promoted", "Paused"), timeout=180, what="the guardrail")
    assert s["phase"] == "RolledBack" and "guardrail" in s["message"], s
    ended = [e for e in events_of(stack.api, "cancer") if e["reason"] == "GuardrailFailed"]
    assert ended, events_of(stack.api, "cancer")
    assert s["lastAnalysis"]["verdict"] == "Fail" and s["guardLooks"] >= 1
    took = (parse_time(s["lastAnalysis"]["time"]) - parse_time(started)).total_seconds()
    assert took < 120, took                                     # not the hour's hold
    wait_for(lambda: status_of(stack.api).get("servingVerified"), timeout=120, what="stable serving all, verified")
    assert set(stack.driver.landing(100)) == {"v1"}
