"""Tier 3: someone else changes the InferenceService mid-rollout (a GitOps tool re-applying its
manifest, `kubectl replace`, a hand edit of canaryTrafficPercent). The operator must stop the
rollout and bring stable back by a revision that runs stable, and its status must name the
version requests actually land on: the driver routes by what Knative wrote into the KIngress.
"""
import json

import pytest

from e2e.controlplane.process import wait_for
from e2e.localstack.observe import events_of, get, phase_in, status_of
from e2e.localstack.stack import inference_service, model_rollout

pytestmark = pytest.mark.e2e
STEPS = [{"weight": 10, "hold": "1h"}, {"weight": 50, "hold": "1h"}, {"weight": 100}]


def at_step(stack, weight: int) -> None:
    """The rollout of v2 holds at `weight`, served, and requests land on both versions."""
    stack.apply(model_rollout("v2", stack.prometheus.url, steps=STEPS))
    if weight > STEPS[0]["weight"]:
        wait_for(lambda: status_of(stack.api).get("stepStartedAt"), timeout=120, what="the first step served")
        stack.patch(json.dumps({"spec": {"strategy": {"steps": STEPS[1:]}}}))    # on to the next step
    wait_for(lambda: (lambda s: s.get("canaryWeight") == weight and s.get("stepStartedAt"))(status_of(stack.api)),
             timeout=120, what=f"{weight}% served")
    assert set(stack.driver.landing(120)) == {"v1", "v2"}


def serving_named(stack) -> str:
    """Once KServe shows what the status claims: the version the status says serves everything."""
    s = wait_for(lambda: (lambda s: s if s.get("phase") in ("RolledBack", "Promoted") and s.get("servingVerified")
                          else None)(status_of(stack.api)), timeout=120, what="stable serving all, verified")
    return s["stableVersion"]


def lands_where_the_status_says(stack) -> None:
    named = serving_named(stack)
    landed = stack.driver.landing(300)
    assert set(landed) == {named}, (landed, status_of(stack.api))


def aborted(stack) -> None:
    stack.patch('{"spec":{"abort":true}}')
    wait_for(lambda: status_of(stack.api).get("observedGeneration") == get(stack.api, "mro", "cancer")["metadata"]["generation"],
             what="the abort read")
    lands_where_the_status_says(stack)


def rolled_back_for_the_external_change(stack, manager: str) -> dict:
    s = wait_for(phase_in(stack.api, "RolledBack", "Failed"), timeout=60, what="the external change noticed")
    assert "changed by " + manager in s["message"] and s["stableVersion"] == "v1", s
    reasons = [(e["type"], e["reason"]) for e in events_of(stack.api, "cancer")]
    assert ("Warning", "ExternalChange") in reasons and ("Warning", "RolledBack") in reasons
    return s


def test_the_manifest_re_applied_at_10_percent_stops_the_rollout_and_stable_takes_all(stack):
    """`kubectl apply` of the InferenceService as first applied (what Argo CD does by default):
    the template goes back to stable's storageUri, canaryTrafficPercent stays."""
    at_step(stack, 10)
    stack.apply(inference_service())
    rolled_back_for_the_external_change(stack, "kubectl-client-side-apply")
    lands_where_the_status_says(stack)
    aborted(stack)


def test_the_manifest_replaced_at_50_percent_stops_the_rollout_and_stable_takes_all(stack):
    """`kubectl replace` (a sync that replaces the object): the template is stable's again and
    canaryTrafficPercent is gone, so while stable's new revision starts Knative sends the latest
    ready one, the candidate's, everything, and KServe records it as rolled out. Before the fix the
    operator then wrote the canary again on top of it: 100% to v2 while the status said 50/50."""
    at_step(stack, 50)
    stack.api.kubectl("replace", "-f", "-", input=inference_service())
    rolled_back_for_the_external_change(stack, "kubectl-replace")
    lands_where_the_status_says(stack)
    aborted(stack)


def test_canary_traffic_percent_edited_by_hand_stops_the_rollout_and_stable_takes_all(stack):
    """canaryTrafficPercent 100 by hand: KServe sends the candidate everything and records it as
    rolled out, so KServe's own rollback (0%) would keep it there."""
    at_step(stack, 10)
    stack.api.kubectl("patch", "isvc", "cancer", "--type", "merge", "-p", '{"spec":{"predictor":{"canaryTrafficPercent":100}}}')
    rolled_back_for_the_external_change(stack, "kubectl-patch")
    lands_where_the_status_says(stack)
    aborted(stack)
