"""Whose change the InferenceService's spec is: the operator's own patches, or someone else's (a
GitOps tool re-applying its manifest, `kubectl replace`, a hand edit of canaryTrafficPercent). Pure.

The apiserver raises metadata.generation on every change of an object's spec, and each operator
patch records the generation it left (status.isvcGeneration). A generation the operator did not
record, while a canary of its own is in the InferenceService, is someone else's change: the split
KServe then routes is no longer the one the status describes, and what the rollout measured no
longer judges what serves. A patch that was in flight when the operator stopped (status written
with isvcPatching, patch sent, its generation not yet recorded) is told apart by being exactly
one generation on and by the spec being what the status asks for.
"""

from __future__ import annotations

from .planner import has_canary
from .status import Status

FIELD_MANAGER = "modelrollout-operator"  # the operator's patches are recorded under this name in managedFields


def generation(isvc: dict) -> int:
    return int((isvc.get("metadata") or {}).get("generation") or 0)


def changed_by(isvc: dict) -> str:
    """Who last changed the spec, from managedFields (the newest entry touching it that is not ours)."""
    entries = [
        m
        for m in (isvc.get("metadata") or {}).get("managedFields") or []
        if m.get("manager") != FIELD_MANAGER and not m.get("subresource") and "f:spec" in (m.get("fieldsV1") or {})
    ]
    if not entries:
        return "someone else"
    last = max(entries, key=lambda m: m.get("time") or "")
    return f"{last.get('manager')} ({last.get('operation', 'Update')} at {last.get('time')})"


def external_change(status: Status, isvc: dict, as_asked: bool) -> str | None:
    """Why the InferenceService is not as the operator left it, or None. as_asked: its fields the
    operator owns are what the status asks for (the router would patch nothing)."""
    recorded = status.get("isvcGeneration")
    if recorded is None or not has_canary(status):
        return None
    now = generation(isvc)
    if now == recorded or (status.get("isvcPatching") and now == recorded + 1 and as_asked):
        return None
    name = (isvc.get("metadata") or {}).get("name")
    return (
        f"InferenceService {name!r} was changed by {changed_by(isvc)} mid-rollout (generation {recorded} -> {now}), "
        "so KServe no longer routes the split this rollout planned"
    )


def record(isvc: dict, patching: bool) -> Status:
    """Status fields for the generation the operator leaves (before a patch: the one it patches from)."""
    return {"isvcGeneration": generation(isvc), "isvcPatching": True if patching else None}
