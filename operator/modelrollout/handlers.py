"""kopf wiring: every ModelRollout gets a daemon that reconciles it whenever the plan asks
(requeue_after, capped by the resync period), and every watch event reconciles it at once, so
CRD edits (pause, promote, abort, retry) act without waiting; so does every change of the
InferenceService it targets (KServe reporting a step served). One lock per rollout keeps them
from reconciling it concurrently; reconciles run in a thread (the Kubernetes and Prometheus
clients block).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback
from typing import Any, Mapping

import kopf

from .adapters.kube import GROUP, PLURAL, VERSION, Conflict
from .reconcile import Reconciler

log = logging.getLogger("modelrollout")
FINALIZER = f"{GROUP}/finalizer"
SLOW_RECONCILE = 60.0  # seconds: past this, a reconcile is reported with where its thread is


def _guarded(obj: Mapping[str, Any]) -> bool:
    """kopf has put its finalizer on the rollout. Until it has, nothing may be routed: a rollout
    deleted meanwhile would vanish without restoring stable (kopf adds the finalizer in the same
    cycle; the MODIFIED event it causes brings the first reconcile)."""
    return FINALIZER in ((obj.get("metadata") or {}).get("finalizers") or ())


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    settings.posting.enabled = False  # our own Events say what happened; kopf's trouble goes to the log
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.persistence.finalizer = FINALIZER  # kopf's: the daemon stops, and stable is restored
    # watching named namespaces: no need to list and watch every namespace (which the
    # ClusterRole does not grant, so kopf would retry for ~40 s before falling back)
    settings.scanning.disabled = bool(memo.get("namespaced"))


def _lock(memo: kopf.Memo, namespace: str, name: str) -> asyncio.Lock:
    """One lock per rollout, shared by its daemon, its watch events and its InferenceService's."""
    return memo.locks.setdefault((namespace, name), asyncio.Lock())


def _in_thread(reconciler: Reconciler, namespace: str, name: str, thread: list[int]) -> float | None:
    thread.append(threading.get_ident())
    return reconciler(namespace, name)


async def _watched(reconciler: Reconciler, namespace: str, name: str) -> float | None:
    """The reconcile in a worker thread; while it outlasts SLOW_RECONCILE, the log says where it
    is (every call it makes has a timeout, so a stuck one is a bug to see, not to wait out)."""
    thread: list[int] = []
    work = asyncio.ensure_future(asyncio.to_thread(_in_thread, reconciler, namespace, name, thread))
    waited = 0.0
    while not (await asyncio.wait({work}, timeout=SLOW_RECONCILE))[0]:
        waited += SLOW_RECONCILE
        frame = sys._current_frames().get(thread[0]) if thread else None
        log.warning(
            "reconcile of %s/%s still running after %.0fs, at:\n%s",
            namespace,
            name,
            waited,
            "".join(traceback.format_stack(frame)) if frame else "(not started: the thread pool is busy)",
        )
    return work.result()


async def _reconcile(memo: kopf.Memo, namespace: str, name: str) -> float | None:
    reconciler: Reconciler = memo.reconciler
    async with _lock(memo, namespace, name):
        try:
            return await _watched(reconciler, namespace, name)
        except Conflict:
            return 0.2  # status moved on since the read: read again soon
        except Exception as exc:  # kept alive: the next resync retries
            reconciler.metrics.reconcile_errors.labels(type(exc).__name__).inc()
            log.exception("reconcile of %s/%s failed", namespace, name)
            return None


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_change(event: kopf.RawEvent, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    assert namespace is not None  # ModelRollouts are namespaced
    target = ((event.get("object") or {}).get("spec") or {}).get("inferenceService")
    before = memo.target_of.pop((namespace, name), None)  # the InferenceService it targeted until now
    if before:
        memo.targets.get(before, set()).discard((namespace, name))
    if event.get("type") == "DELETED":
        memo.reconciler.metrics.forget(namespace, name)
        memo.locks.pop((namespace, name), None)
        return
    if target:
        memo.target_of[(namespace, name)] = (namespace, target)
        memo.targets.setdefault((namespace, target), set()).add((namespace, name))
    if _guarded(event.get("object") or {}):
        await _reconcile(memo, namespace, name)


@kopf.on.event("serving.kserve.io", "v1beta1", "inferenceservices")
async def on_inference_service(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """KServe's status moved (a canary became ready, a weight is served): look at once instead
    of waiting for the next poll."""
    for rollout_namespace, rollout in list(memo.targets.get((namespace, name), ())):
        await _reconcile(memo, rollout_namespace, rollout)


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=6, backoff=5)
async def restore_stable(body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Deleting a rollout mid-canary sends everything back to stable before the object goes.
    A refused patch is retried a few times, then the deletion goes ahead (never blocked for good)."""
    assert namespace is not None  # ModelRollouts are namespaced
    reconciler: Reconciler = memo.reconciler
    async with _lock(memo, namespace, name):
        try:
            done = await asyncio.to_thread(reconciler.revert, dict(body))
        except Exception as exc:
            raise kopf.TemporaryError(f"could not restore stable: {exc}", delay=5) from exc
    logger.info("%s/%s deleted: %s", namespace, name, done)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5)
async def keep_reconciling(stopped: kopf.DaemonStopped, body: kopf.Body, namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    assert namespace is not None  # ModelRollouts are namespaced
    resync: float = memo.resync
    while not stopped:
        if not _guarded(body):
            await stopped.wait(0.5)
            continue
        after = await _reconcile(memo, namespace, name)
        await stopped.wait(resync if after is None else min(after, resync))
