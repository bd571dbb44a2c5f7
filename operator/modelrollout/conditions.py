"""Status conditions, following Kubernetes conventions: one entry per type, status True/False,
a CamelCase reason, a message, observedGeneration, and a lastTransitionTime that moves only
when the status flips.

- Ready: stable serves all traffic and no rollout is running (Idle, Promoted).
- Progressing: a canary is taking traffic and being analysed (Progressing, Holding).
- Paused: held by spec.paused or by the onInconclusive policy.
- Degraded: the candidate was rolled back, or the spec cannot be acted on (Failed).
"""
from __future__ import annotations

from typing import Any

TYPES = {
    "Ready": ("Idle", "Promoted"),
    "Progressing": ("Progressing", "Holding"),
    "Paused": ("Paused",),
    "Degraded": ("RolledBack", "Failed"),
}


def conditions(phase: str, message: str, generation: int, now: str, previous: list[dict] | None) -> list[dict[str, Any]]:
    before = {c.get("type"): c for c in previous or []}
    out = []
    for kind, phases in TYPES.items():
        status = "True" if phase in phases else "False"
        old = before.get(kind) or {}
        out.append({
            "type": kind, "status": status, "reason": phase, "message": message if status == "True" else "",
            "observedGeneration": generation,
            "lastTransitionTime": old["lastTransitionTime"] if old.get("status") == status and old.get("lastTransitionTime") else now,
        })
    return out
