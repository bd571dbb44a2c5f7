"""kopf wiring: every ModelRollout gets a daemon that reconciles it whenever the plan asks
(requeue_after, capped by the resync period), and every watch event reconciles it at once, so
CRD edits (pause, promote, abort, retry) act without waiting. One lock per object keeps the two
from reconciling the same rollout concurrently; reconciles run in a thread (the Kubernetes and
Prometheus clients block).
"""
from __future__ import annotations

import asyncio
import logging

import kopf
from prometheus_client import start_http_server

from .adapters.kube import GROUP, PLURAL, VERSION, Conflict
from .reconcile import Reconciler

log = logging.getLogger("modelrollout")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    settings.posting.enabled = False                  # our own Events say what happened; kopf's trouble goes to the log
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.persistence.finalizer = f"{GROUP}/finalizer"   # kopf's, to stop the daemon when a rollout goes
    if memo.get("metrics_port"):
        start_http_server(memo.metrics_port, addr=memo.get("metrics_address", "0.0.0.0"),
                          registry=memo.reconciler.metrics.registry)


async def _reconcile(memo: kopf.Memo, namespace: str, name: str) -> float | None:
    reconciler: Reconciler = memo.reconciler
    lock = memo.setdefault("lock", asyncio.Lock())
    async with lock:
        try:
            return await asyncio.to_thread(reconciler, namespace, name)
        except Conflict:
            return 0.2                                  # status moved on since the read: read again soon
        except Exception as exc:                        # kept alive: the next resync retries
            reconciler.metrics.reconcile_errors.labels(type(exc).__name__).inc()
            log.exception("reconcile of %s/%s failed", namespace, name)
            return None


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_change(event: kopf.RawEvent, namespace: str, name: str, memo: kopf.Memo, **_) -> None:
    if event.get("type") == "DELETED":
        memo.reconciler.metrics.forget(namespace, name)
        return
    await _reconcile(memo, namespace, name)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5)
async def keep_reconciling(stopped: kopf.DaemonStopped, namespace: str, name: str, memo: kopf.Memo, **_) -> None:
    resync: float = memo.resync
    while not stopped:
        after = await _reconcile(memo, namespace, name)
        await stopped.wait(resync if after is None else min(after, resync))
