"""The kopf handlers' own decisions (the kopf machinery itself runs in the integration tests)."""
import asyncio

import kopf

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
