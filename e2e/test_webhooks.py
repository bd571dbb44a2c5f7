"""Tier 3: webhooks and notifications on the real control plane, with real predictors and the
operator process, calling a real HTTP server the test starts (on 127.0.0.1, where the operator
runs): a pre-rollout hook keeps every user request off the candidate until it answers 2xx, a
confirm-promotion hook gates the promotion, and every transition reaches the event hook and a
Slack-format notification whose URL is in a Secret."""
import pytest

from e2e.controlplane.process import wait_for
from e2e.localstack.hook_server import HookServer
from e2e.localstack.observe import events_of, get, phase_in, status_of
from e2e.localstack.stack import model_rollout

pytestmark = pytest.mark.e2e


def with_hooks(manifest: str, url: str) -> str:
    import yaml
    obj = yaml.safe_load(manifest)
    obj["spec"]["webhooks"] = [
        {"name": "smoke", "type": "pre-rollout", "url": f"{url}/smoke", "timeout": "2s", "metadata": {"suite": "e2e"}},
        {"name": "approve", "type": "confirm-promotion", "url": f"{url}/approve", "timeout": "2s"},
        {"name": "events", "type": "event", "url": f"{url}/events"},
        {"name": "after", "type": "post-rollout", "url": f"{url}/after"}]
    obj["spec"]["notifications"] = [{"name": "team", "format": "slack", "reasons": ["PreRolloutPassed", "Promoted"],
                                     "urlFrom": {"secretKeyRef": {"name": "team-slack", "key": "url"}},
                                     "text": "{namespace}/{name} {reason}: {message}"}]
    return yaml.safe_dump(obj)


def test_webhooks_gate_the_first_traffic_and_the_promotion_and_hear_every_transition(stack):
    with HookServer() as hooks:
        stack.api.kubectl("create", "secret", "generic", "team-slack", f"--from-literal=url={hooks.url}/slack")
        hooks.answer("/smoke", 503)
        hooks.answer("/approve", 403)
        stack.apply(with_hooks(model_rollout("v2", stack.prometheus.url, steps=[{"weight": 50}, {"weight": 100}]), hooks.url))

        asked = wait_for(lambda: hooks.posts("/smoke"), timeout=120, what="the pre-rollout webhook asked")
        assert asked[0]["canaryVersion"] == "v2" and asked[0]["metadata"] == {"suite": "e2e"}
        assert get(stack.api, "isvc", "cancer")["spec"]["predictor"]["canaryTrafficPercent"] == 0   # runs, at 0%
        wait_for(lambda: status_of(stack.api).get("errors"), timeout=30, what="the refusal counted")
        assert "v2" not in stack.driver.landing(100)                 # not one user request while it refuses
        hooks.answer("/smoke", 200)

        wait_for(lambda: hooks.posts("/approve"), timeout=180, what="the confirm-promotion webhook asked")
        s = status_of(stack.api)
        assert s["phase"] == "Progressing" and s["gate"] == "confirm-promotion" and s["canaryWeight"] == 50
        hooks.answer("/approve", 200)
        s = wait_for(phase_in(stack.api, "Promoted", "RolledBack"), timeout=120, what="the promotion")
        assert s["phase"] == "Promoted" and "confirm-promotion webhooks answered 2xx" in s["message"], s["message"]

        reasons = [e["reason"] for e in events_of(stack.api, "cancer")]
        wait_for(lambda: [b["event"]["reason"] for b in hooks.posts("/events")] == reasons, timeout=30,
                 what=f"the event webhook to hear {reasons}")
        assert reasons[0] == "RolloutStarted" and "WebhookRefused" in reasons and reasons[-1] == "Promoted"
        assert "PreRolloutPassed" in reasons and "AwaitingConfirmation" in reasons
        wait_for(lambda: len(hooks.posts("/slack")) == 2, timeout=30, what="two Slack messages")
        texts = [b["text"] for b in hooks.posts("/slack")]
        assert texts[0].startswith(f"{stack.namespace}/cancer PreRolloutPassed: ") and " Promoted: v2 promoted" in texts[1]
        assert [b["phase"] for b in hooks.posts("/after")] == ["Promoted"]
