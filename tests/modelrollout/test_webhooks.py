"""What the spec's webhooks and notifications say, and what they send (webhooks.py)."""
import pytest

from modelrollout.planner import Event
from modelrollout.spec import SpecError
from modelrollout.webhooks import (Target, notification_body, parse_notifications, parse_webhooks, payload,
                                   text_of)
from modelrollout.sources import KeyRef

ROLLOUT = {"metadata": {"name": "cancer", "namespace": "ml"}, "spec": {"inferenceService": "cancer"}}
STATUS = {"phase": "RolledBack", "stableVersion": "v1", "canaryVersion": "v2", "canaryWeight": 0,
          "message": "v2 rolled back to v1: analysis failed", "lastAnalysis": {"verdict": "Fail", "reason": "errors"}}
EVENT = Event("Warning", "RolledBack", "v2 rolled back to v1: analysis failed")


def test_webhooks_parse_with_their_defaults():
    hooks = parse_webhooks([{"name": "smoke", "type": "pre-rollout", "url": "http://tester/", "metadata": {"suite": "a"}},
                            {"name": "ok", "type": "confirm-promotion", "urlFrom": {"secretKeyRef": {"name": "s", "key": "u"}},
                             "timeout": "3s"}])
    assert [(h.name, h.type, h.timeout) for h in hooks] == [("smoke", "pre-rollout", 10.0), ("ok", "confirm-promotion", 3.0)]
    assert hooks[0].target == Target(url="http://tester/") and hooks[0].metadata == (("suite", "a"),)
    assert hooks[1].target == Target(secret=KeyRef("Secret", "s", "u"))


@pytest.mark.parametrize("raw, message", [
    ([{"name": "a", "type": "pre-rollout"}], r"spec.webhooks\[0\]: needs one of url or urlFrom"),
    ([{"name": "a", "type": "before", "url": "http://x"}], r"spec.webhooks\[0\].type: must be one of pre-rollout"),
    ([{"name": "a", "type": "event", "url": "ftp://x"}], r"\.url: must start with http:// or https://"),
    ([{"name": "a", "type": "event", "url": "http://x"}, {"name": "a", "type": "event", "url": "http://y"}],
     "the name 'a' is used twice"),
    ([{"type": "event", "url": "http://x"}], r"spec.webhooks\[0\].name: required"),
    ([{"name": "a", "type": "event", "url": "http://x", "timeout": "soon"}], r"timeout: 'soon' is not a duration"),
    ({"name": "a"}, "spec.webhooks: expected a list"),
])
def test_a_bad_webhook_is_refused_naming_the_field(raw, message):
    with pytest.raises(SpecError, match=message):
        parse_webhooks(raw)


@pytest.mark.parametrize("raw, message", [
    ([{"name": "t", "format": "discord", "url": "http://x"}], r"format: must be one of generic, slack, teams"),
    ([{"name": "t", "url": "http://x", "text": "{name} {version}"}], r"unknown field 'version'"),
    ([{"name": "t", "url": "http://x", "text": "{name"}], r"text: .*write \{\{ and \}\} for braces"),
    ([{"name": "t", "url": "http://x", "reasons": "Promoted"}], r"reasons: expected a list of Event reasons"),
])
def test_a_bad_notification_is_refused_naming_the_field(raw, message):
    with pytest.raises(SpecError, match=message):
        parse_notifications(raw)


def test_the_payload_names_the_rollout_its_versions_and_verdict():
    body = payload(ROLLOUT, STATUS, "event", EVENT, (("team", "ml"),))
    assert body == {"name": "cancer", "namespace": "ml", "type": "event", "inferenceService": "cancer",
                    "phase": "RolledBack", "message": STATUS["message"], "stableVersion": "v1", "canaryVersion": "v2",
                    "canaryWeight": 0, "verdict": "Fail", "verdictReason": "errors", "metadata": {"team": "ml"},
                    "event": {"type": "Warning", "reason": "RolledBack", "message": EVENT.message}}


def test_slack_teams_and_generic_bodies_carry_the_templated_text():
    slack, teams, generic = parse_notifications([
        {"name": "s", "format": "slack", "url": "http://x", "text": "{namespace}/{name}: {reason} ({canaryVersion} -> {stableVersion})"},
        {"name": "t", "format": "teams", "url": "http://x"},
        {"name": "g", "url": "http://x", "reasons": ["Promoted"]}])
    body = payload(ROLLOUT, STATUS, "notification", EVENT)
    assert notification_body(slack, body) == {"text": "ml/cancer: RolledBack (v2 -> v1)"}
    card = notification_body(teams, body)
    assert card["@type"] == "MessageCard" and card["themeColor"] == "D70000"
    assert card["text"] == "ModelRollout ml/cancer: RolledBack: v2 rolled back to v1: analysis failed"
    assert notification_body(generic, body) == {**body, "text": text_of(generic, body)}
    assert generic.reasons == ("Promoted",)
