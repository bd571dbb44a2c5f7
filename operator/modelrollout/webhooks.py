"""Webhooks and notifications, as Flagger has them: what the spec asks for, when each is due and
what is sent. Pure: the HTTP calls are adapters/hooks.py's.

- pre-rollout: before the candidate takes any traffic (serverless: once its revision runs at 0%;
  standard: before it is written, as KServe runs no pods for a 0% canary there). A non-2xx
  answer or a timeout holds the rollout and counts as an analysis Error
  (consecutiveErrorLimit in a row roll back); every pre-rollout hook must answer 2xx.
- confirm-promotion: when the analysis would promote; the same rule, the candidate keeping its
  weight meanwhile (the guardrail still looks).
- rollback: at each look while the rollout runs: a 2xx answer rolls the candidate back (a
  manual gate, as Flagger's); any other answer, or none, lets it carry on.
- post-rollout: once, after it is promoted or rolled back; event: every Event the operator
  emits. Neither blocks, and neither do notifications (generic, Slack or Teams JSON with a
  templated text): delivery failures are counted in modelrollout_notification_failures_total.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any, Mapping

from .fields import SpecError, parse_duration
from .sources import KeyRef, _key_ref

TYPES = ("pre-rollout", "confirm-promotion", "rollback", "post-rollout", "event")
GATES = ("pre-rollout", "confirm-promotion")
FORMATS = ("generic", "slack", "teams")
FIELDS = ("name", "namespace", "inferenceService", "phase", "reason", "message", "type", "stableVersion", "canaryVersion", "canaryWeight", "verdict")
DEFAULT_TEXT = "ModelRollout {namespace}/{name}: {reason}: {message}"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where to POST: a URL, or one held in a Secret (a Slack or Teams URL is a credential)."""

    url: str | None = None
    secret: KeyRef | None = None


@dataclasses.dataclass(frozen=True)
class WebhookSpec:
    name: str
    type: str
    target: Target
    timeout: float = 10.0
    metadata: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class NotificationSpec:
    name: str
    format: str
    target: Target
    reasons: tuple[str, ...] = ()  # the Event reasons sent; () = every one
    text: str = DEFAULT_TEXT
    timeout: float = 5.0


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the gate hooks said: ok when every one answered 2xx; message names those that did not."""

    ok: bool
    message: str


@dataclasses.dataclass(frozen=True)
class HookAnswers:
    """A reconcile's webhook answers, for the planner: the gate hooks' (None: not called), and
    the rollback hooks' (the 2xx answer that asks for a rollback; checked: they were called)."""

    gate: Answer | None = None
    rollback: str | None = None
    rollback_checked: bool = False


def _target(raw: Mapping, where: str) -> Target:
    url, ref = raw.get("url"), raw.get("urlFrom")
    if (url is None) == (ref is None):
        raise SpecError(f"{where}: needs one of url or urlFrom {{secretKeyRef: {{name, key}}}}")
    if url is not None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SpecError(f"{where}.url: must start with http:// or https://, got {url!r}")
        return Target(url=url)
    if not isinstance(ref, Mapping) or "secretKeyRef" not in ref:
        raise SpecError(f"{where}.urlFrom: expected {{secretKeyRef: {{name, key}}}} of a Secret holding the URL")
    return Target(secret=_key_ref(ref["secretKeyRef"], f"{where}.urlFrom.secretKeyRef", ("Secret",)))


def _named(raw: Any, where: str) -> list[Mapping]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(h, Mapping) for h in raw):
        raise SpecError(f"{where}: expected a list of mappings, each with a name")
    names = [h.get("name") for h in raw]
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise SpecError(f"{where}[{i}].name: required")
        if names.count(name) > 1:
            raise SpecError(f"{where}: the name {name!r} is used twice")
    return raw


def parse_webhooks(raw: Any) -> tuple[WebhookSpec, ...]:
    out = []
    for i, h in enumerate(_named(raw, "spec.webhooks")):
        where = f"spec.webhooks[{i}]"
        if h.get("type") not in TYPES:
            raise SpecError(f"{where}.type: must be one of {', '.join(TYPES)}, got {h.get('type')!r}")
        metadata = h.get("metadata") or {}
        if not isinstance(metadata, Mapping) or not all(isinstance(v, str) for v in metadata.values()):
            raise SpecError(f"{where}.metadata: expected a mapping of strings")
        out.append(
            WebhookSpec(
                h["name"],
                h["type"],
                _target(h, where),
                parse_duration(h.get("timeout", "10s"), f"{where}.timeout"),
                tuple(sorted((str(k), v) for k, v in metadata.items())),
            )
        )
    return tuple(out)


def parse_notifications(raw: Any) -> tuple[NotificationSpec, ...]:
    out = []
    for i, n in enumerate(_named(raw, "spec.notifications")):
        where = f"spec.notifications[{i}]"
        fmt = n.get("format", "generic")
        if fmt not in FORMATS:
            raise SpecError(f"{where}.format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
        reasons = n.get("reasons") or []
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise SpecError(f"{where}.reasons: expected a list of Event reasons such as [Promoted, RolledBack]")
        text = n.get("text", DEFAULT_TEXT)
        check_template(text, f"{where}.text")
        out.append(
            NotificationSpec(n["name"], fmt, _target(n, where), tuple(reasons), text, parse_duration(n.get("timeout", "5s"), f"{where}.timeout"))
        )
    return tuple(out)


def check_template(text: Any, where: str) -> None:
    if not isinstance(text, str):
        raise SpecError(f"{where}: expected a string")
    try:
        used = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise SpecError(f"{where}: {exc} (write {{{{ and }}}} for braces)") from None
    unknown = [f for f in used if f not in FIELDS]
    if unknown:
        raise SpecError(f"{where}: unknown field {unknown[0]!r}; the text may use {', '.join('{' + f + '}' for f in FIELDS)}")


# -- what is sent --------------------------------------------------------------------------------


def payload(rollout: dict, status: Mapping[str, Any], kind: str, event: Any = None, metadata: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The JSON body of every webhook: who, where it stands, the versions and the last verdict
    (as Flagger's: name, namespace, phase, type, metadata), and the event for event hooks."""
    meta = rollout.get("metadata") or {}
    analysis = status.get("lastAnalysis") or {}
    body = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "type": kind,
        "inferenceService": (rollout.get("spec") or {}).get("inferenceService"),
        "phase": status.get("phase"),
        "message": status.get("message", ""),
        "stableVersion": status.get("stableVersion"),
        "canaryVersion": status.get("canaryVersion"),
        "canaryWeight": int(status.get("canaryWeight") or 0),
        "verdict": analysis.get("verdict"),
        "verdictReason": analysis.get("reason"),
        "metadata": dict(metadata),
    }
    if event is not None:
        body["event"] = {"type": event.type, "reason": event.reason, "message": event.message}
    return body


def text_of(n: NotificationSpec, body: Mapping[str, Any]) -> str:
    event = body.get("event") or {}
    values = {f: body.get(f) for f in FIELDS}
    values.update(reason=event.get("reason", ""), message=event.get("message", body.get("message", "")))
    return n.text.format_map({k: "" if v is None else v for k, v in values.items()})


def notification_body(n: NotificationSpec, body: Mapping[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook JSON ({text}), Teams' (a MessageCard: summary and text), or the
    generic webhook payload with the rendered text beside it."""
    text = text_of(n, body)
    if n.format == "slack":
        return {"text": text}
    if n.format == "teams":
        warning = (body.get("event") or {}).get("type") == "Warning"
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text[:80],
            "themeColor": "D70000" if warning else "0076D7",
            "text": text,
        }
    return {**body, "text": text}


def wanted(n: NotificationSpec, reason: str) -> bool:
    return not n.reasons or reason in n.reasons


def of_type(hooks: tuple[WebhookSpec, ...], kind: str) -> tuple[WebhookSpec, ...]:
    return tuple(h for h in hooks if h.type == kind)
