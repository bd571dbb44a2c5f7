"""Status conditions, following Kubernetes conventions: one entry per type, status True/False,
a CamelCase reason, a message, observedGeneration, and a lastTransitionTime that moves only
when the status flips.

- Ready: stable serves all traffic and no rollout is running (Idle, Promoted).
- Progressing: a candidate is being evaluated before traffic, or takes traffic and is analysed
  (Evaluating, Progressing, Holding), or the rollout waits for KServe's status to catch up (Waiting).
- Paused: held by spec.paused or by the onInconclusive policy.
- Degraded: the candidate was rolled back, the spec cannot be acted on (Failed), the
  InferenceService refused the operator's patch (RoutingFailed, with the apiserver's message), or
  after a promotion or rollback KServe still routes to a revision that does not run stable
  (ServingMismatch: phase Failed until it does).
"""
from __future__ import annotations

from typing import Any

TYPES = {
    "Ready": ("Idle", "Promoted"),
    "Progressing": ("Evaluating", "Progressing", "Holding", "Waiting"),
    "Paused": ("Paused",),
    "Degraded": ("RolledBack", "Failed"),
}


def conditions(phase: str, message: str, generation: int, now: str, previous: list[dict] | None,
               degraded: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """degraded: (reason, message) of a problem that makes the rollout Degraded whatever its phase."""
    before = {c.get("type"): c for c in previous or []}
    out = []
    for kind, phases in TYPES.items():
        status = "True" if phase in phases else "False"
        reason, text = phase, message
        if kind == "Degraded" and degraded:
            status, (reason, text) = "True", degraded
        old = before.get(kind) or {}
        out.append({
            "type": kind, "status": status, "reason": reason, "message": text if status == "True" else "",
            "observedGeneration": generation,
            "lastTransitionTime": old["lastTransitionTime"] if old.get("status") == status and old.get("lastTransitionTime") else now,
        })
    return out
