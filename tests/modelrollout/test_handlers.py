"""The kopf handlers' own decisions (the kopf machinery itself runs in the integration tests)."""
import asyncio
import logging
import threading

import kopf

from modelrollout import handlers
from modelrollout.handlers import FINALIZER, on_change


class Reconciler:
    def __init__(self):
        self.calls = []

    def __call__(self, namespace, name):
        self.calls.append((namespace, name))
        return None


def memo() -> kopf.Memo:
    return kopf.Memo(reconciler=Reconciler(), targets={}, target_of={}, locks={})


def event(finalizers):
    return {"type": "ADDED", "object": {"metadata": {"name": "r", "namespace": "ns", "finalizers": finalizers},
                                        "spec": {"inferenceService": "cancer"}}}


def test_a_rollout_is_not_reconciled_before_it_carries_the_finalizer():
    """Reconciled first, a rollout deleted within that second vanished with its canary still
    serving: the delete handler runs only on objects that carry the finalizer."""
    m = memo()
    asyncio.run(on_change(event=event([]), namespace="ns", name="r", memo=m))
    assert m.reconciler.calls == []
    assert m.targets == {("ns", "cancer"): {("ns", "r")}}         # its InferenceService's events still find it
    asyncio.run(on_change(event=event([FINALIZER]), namespace="ns", name="r", memo=m))
    assert m.reconciler.calls == [("ns", "r")]


class Stuck(Reconciler):
    """A reconcile that blocks in a call until released (as a call with no timeout would)."""
    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def __call__(self, namespace, name):
        self.waiting_for_the_apiserver()
        return super().__call__(namespace, name)

    def waiting_for_the_apiserver(self):
        self.release.wait(10)


def test_a_stuck_reconcile_is_logged_with_where_its_thread_waits(monkeypatch, caplog):
    monkeypatch.setattr(handlers, "SLOW_RECONCILE", 0.2)
    m = kopf.Memo(reconciler=Stuck(), targets={}, target_of={}, locks={})

    async def run():
        asyncio.get_running_loop().call_later(0.7, m.reconciler.release.set)
        await on_change(event=event([FINALIZER]), namespace="ns", name="r", memo=m)
    with caplog.at_level(logging.WARNING, logger="modelrollout"):
        asyncio.run(run())
    slow = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(slow) >= 2 and "ns/r" in slow[0] and "waiting_for_the_apiserver" in slow[0]
    assert m.reconciler.calls == [("ns", "r")]                     # and it finished once released
