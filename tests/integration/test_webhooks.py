"""Webhooks and notifications over real HTTP: the operator's Reconciler (on the in-memory
Kubernetes of its unit tests) with the real HTTP adapter, calling a real server the test starts."""
import datetime as dt

import pytest

from e2e.controlplane.process import wait_for
from e2e.localstack.hook_server import HookServer
from modelrollout.adapters.hooks import Hooks
from modelrollout.metrics import OperatorMetrics
from modelrollout.reconcile import Reconciler
from tests.modelrollout.test_reconcile import HEALTHY, T0, kserve_reports, make
from modelrollout.analysis import Measurements

pytestmark = pytest.mark.integration


@pytest.fixture
def server():
    with HookServer() as s:
        yield s


def rollout_with(server, webhooks=(), notifications=()):
    kube = make(webhooks=[{"name": n, "type": t, "url": f"{server.url}/{n}", "timeout": "1s"} for n, t in webhooks],
                notifications=list(notifications))
    kube.secrets = {"slack": {"url": f"{server.url}/slack"}}
    clock, metrics = [T0], OperatorMetrics()
    hooks = Hooks(lambda ns, name: kube.secrets[name], metrics)
    r = Reconciler(kube, lambda *a: Measurements(HEALTHY, HEALTHY), metrics, hooks=hooks, clock=lambda: clock[0])
    return kube, r, clock, hooks, metrics


def later(clock, seconds):
    clock[0] += dt.timedelta(seconds=seconds)


def test_pre_rollout_holds_the_candidate_at_zero_until_its_webhook_answers_2xx(server):
    kube, r, clock, hooks, metrics = rollout_with(server, [("smoke", "pre-rollout"), ("events", "event")])
    server.answer("/smoke", 503)
    r("default", "cancer")
    assert kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0           # deployed, no traffic
    kserve_reports(kube, 0)                                                      # its revision is ready at 0%
    r("default", "cancer")
    s = kube.rollout["status"]
    assert server.posts("/smoke")[0]["type"] == "pre-rollout" and server.posts("/smoke")[0]["canaryVersion"] == "v2"
    assert s["errors"] == 1 and "webhook 'smoke' answered 503" in s["message"] and s["canaryWeight"] == 0
    assert kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    server.answer("/smoke", 200)
    r("default", "cancer")
    assert len(server.posts("/smoke")) == 1                                      # asked once an interval
    later(clock, 60)
    r("default", "cancer")
    assert kube.rollout["status"]["canaryWeight"] == 5 and kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 5
    hooks.drain()
    reasons = [b["event"]["reason"] for b in server.posts("/events")]
    assert reasons == ["RolloutStarted", "WebhookRefused", "PreRolloutPassed"], reasons
    assert metrics.webhook_calls.labels("pre-rollout", "refused")._value.get() == 1
    assert metrics.webhook_calls.labels("pre-rollout", "ok")._value.get() == 1


def test_a_webhook_that_does_not_answer_in_time_counts_as_an_error(server):
    kube, r, clock, hooks, metrics = rollout_with(server, [("slow", "pre-rollout")])
    server.delays["/slow"] = 3.0                                                 # its timeout is 1s
    r("default", "cancer")
    kserve_reports(kube, 0)
    r("default", "cancer")
    assert kube.rollout["status"]["errors"] == 1 and "did not answer" in kube.rollout["status"]["message"]
    assert metrics.webhook_calls.labels("pre-rollout", "failed")._value.get() == 1


def test_confirm_promotion_then_post_rollout_and_a_slack_notification(server):
    kube, r, clock, hooks, metrics = rollout_with(
        server, [("confirm", "confirm-promotion"), ("after", "post-rollout")],
        [{"name": "team", "format": "slack", "urlFrom": {"secretKeyRef": {"name": "slack", "key": "url"}},
          "reasons": ["Promoted", "AwaitingConfirmation"], "text": "{name}: {reason}: {canaryVersion} -> {stableVersion}"}])
    kube.rollout["spec"]["strategy"]["steps"] = [{"weight": 50, "hold": "1m"}, {"weight": 100}]
    server.answer("/confirm", 409)
    r("default", "cancer")
    kserve_reports(kube, 50)
    r("default", "cancer")
    later(clock, 70)
    r("default", "cancer")                                                       # analysis passed: asks for confirmation
    assert kube.rollout["status"]["gate"] == "confirm-promotion"
    later(clock, 1)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Progressing" and kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 50
    server.answer("/confirm", 200)
    later(clock, 60)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Promoted"
    hooks.drain()
    assert [b["phase"] for b in server.posts("/after")] == ["Promoted"]
    assert [b["text"] for b in server.posts("/slack")] == ["cancer: AwaitingConfirmation: v2 -> v1", "cancer: Promoted:  -> v2"]


def test_a_rollback_webhook_answering_2xx_rolls_back(server):
    kube, r, clock, hooks, metrics = rollout_with(server, [("stop", "rollback")])
    server.answer("/stop", 404)                                                  # carry on
    r("default", "cancer")
    kserve_reports(kube, 5)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Progressing"
    server.answer("/stop", 200)
    later(clock, 60)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "RolledBack" and "asked by a rollback webhook" in kube.rollout["status"]["message"]
    assert kube.isvc["spec"]["predictor"].get("canaryTrafficPercent") in (None, 0)


def test_failed_deliveries_never_block_and_are_counted(server):
    kube, r, clock, hooks, metrics = rollout_with(
        server, [("events", "event")], [{"name": "down", "format": "teams", "url": "http://127.0.0.1:9/"}])
    server.answer("/events", 500)
    r("default", "cancer")
    kserve_reports(kube, 5)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Progressing"
    hooks.drain()
    wait_for(lambda: metrics.notification_failures.labels("teams")._value.get() >= 1, 10, "the Teams failure counted")
    assert metrics.notification_failures.labels("event")._value.get() >= 1
