"""Webhook and notification calls over HTTP (what webhooks.py decides to send). Gate hooks
(pre-rollout, confirm-promotion, rollback) are called in the reconcile and answer it; event and
post-rollout hooks and notifications are sent from one background thread, in the order of the
Events, and never block it: a delivery that fails, or one dropped because too many are pending,
is counted."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

from ..metrics import OperatorMetrics
from ..planner import Event
from ..webhooks import Answer, NotificationSpec, Target, WebhookSpec, notification_body, of_type, payload, wanted

log = logging.getLogger(__name__)
Read = Callable[[str, str], Mapping[str, str]]  # (namespace, Secret name) -> its data
PENDING_LIMIT = 100  # undelivered announcements kept at most


class Unreachable(Exception):
    """No HTTP answer: the URL could not be resolved, connected to or read within the timeout."""


def post(url: str, body: Mapping[str, Any], timeout: float) -> int:
    """POSTs the JSON body; returns the HTTP status (any), raises Unreachable when none came."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", "User-Agent": "modelrollout-operator"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unreachable(str(getattr(exc, "reason", exc))) from None


class Hooks:
    def __init__(self, read_secret: Read, metrics: OperatorMetrics, send: Callable[..., int] = post, workers: int = 1):
        self.read_secret, self.metrics, self.send = read_secret, metrics, send
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="announce")
        self._pending = threading.BoundedSemaphore(PENDING_LIMIT)

    def _url(self, target: Target, namespace: str) -> str:
        if target.url:
            return target.url
        assert target.secret is not None
        data = self.read_secret(namespace, target.secret.name)
        if target.secret.key not in data:
            raise Unreachable(f"Secret {target.secret.name!r} has no key {target.secret.key!r}")
        return data[target.secret.key].strip()

    def _call(self, hook: WebhookSpec, body: dict, namespace: str) -> tuple[bool, str]:
        """(answered 2xx, what it said)."""
        try:
            code = self.send(self._url(hook.target, namespace), body, hook.timeout)
        except Exception as exc:  # Unreachable, or the Secret could not be read
            self.metrics.webhook_calls.labels(hook.type, "failed").inc()
            return False, f"webhook {hook.name!r} did not answer: {exc}"
        ok = 200 <= code < 300
        self.metrics.webhook_calls.labels(hook.type, "ok" if ok else "refused").inc()
        return ok, f"webhook {hook.name!r} answered {code}"

    def gate(self, rollout: dict, status: Mapping[str, Any], hooks: tuple[WebhookSpec, ...], kind: str) -> Answer:
        """Every `kind` hook (pre-rollout, confirm-promotion) must answer 2xx."""
        said = [self._call(h, payload(rollout, status, kind, metadata=h.metadata), rollout["metadata"]["namespace"]) for h in of_type(hooks, kind)]
        refused = [message for ok, message in said if not ok]
        return Answer(not refused, "; ".join(refused) or f"{len(said)} {kind} webhook(s) answered 2xx")

    def asks_rollback(self, rollout: dict, status: Mapping[str, Any], hooks: tuple[WebhookSpec, ...]) -> str | None:
        """The first rollback hook that answers 2xx (it asks for the rollback), else None."""
        for h in of_type(hooks, "rollback"):
            ok, message = self._call(h, payload(rollout, status, "rollback", metadata=h.metadata), rollout["metadata"]["namespace"])
            if ok:
                return message
        return None

    def announce(
        self, rollout: dict, status: Mapping[str, Any], event: Event, hooks: tuple[WebhookSpec, ...], notifications: tuple[NotificationSpec, ...]
    ) -> None:
        """Event hooks and notifications for this event, and post-rollout hooks when it ends a
        rollout; sent in the background."""
        namespace = rollout["metadata"]["namespace"]
        sends: list[tuple[str, Target, dict, float]] = []
        for h in of_type(hooks, "event"):
            sends.append(("event", h.target, payload(rollout, status, "event", event, h.metadata), h.timeout))
        if event.reason in ("Promoted", "RolledBack"):
            for h in of_type(hooks, "post-rollout"):
                sends.append(("post-rollout", h.target, payload(rollout, status, "post-rollout", event, h.metadata), h.timeout))
        for n in notifications:
            if wanted(n, event.reason):
                body = notification_body(n, payload(rollout, status, "notification", event))
                sends.append((n.format, n.target, body, n.timeout))
        for kind, target, body, timeout in sends:
            if not self._pending.acquire(blocking=False):
                self.metrics.notification_failures.labels(kind).inc()  # dropped: too many pending
                continue
            self.pool.submit(self._deliver, kind, target, body, timeout, namespace)

    def _deliver(self, kind: str, target: Target, body: dict, timeout: float, namespace: str) -> None:
        try:
            code = self.send(self._url(target, namespace), body, timeout)
            if not 200 <= code < 300:
                raise Unreachable(f"answered {code}")
        except Exception as exc:
            self.metrics.notification_failures.labels(kind).inc()
            log.warning("%s delivery failed: %s", kind, exc)
        finally:
            self._pending.release()

    def drain(self, timeout: float = 10.0) -> None:
        """Waits until nothing is pending (tests, shutdown)."""
        for _ in range(PENDING_LIMIT):
            if not self._pending.acquire(timeout=timeout):
                raise TimeoutError("announcements still pending")
        for _ in range(PENDING_LIMIT):
            self._pending.release()
