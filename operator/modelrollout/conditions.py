"""Status conditions, following Kubernetes conventions: one entry per type, status True/False,
a CamelCase reason, a message, observedGeneration, and a lastTransitionTime that moves only
when the status flips.

- Ready: stable serves all traffic and no rollout is running (Idle, Promoted), and after a
  serverless promotion KServe routes the promoted version alone (not `settling`).
- Progressing: a candidate is being evaluated or shadowed before traffic, or takes traffic and is
  analysed (Evaluating, Shadowing, Progressing, Holding), or the rollout waits for KServe's status
  to catch up (Waiting).
- Paused: held by spec.paused or by the onInconclusive policy.
- Degraded: the candidate was rolled back, the spec cannot be acted on (Failed), the
  InferenceService refused the operator's patch (RoutingFailed, with the apiserver's message), or
  after a promotion or rollback KServe still routes to a revision that does not run stable
  (ServingMismatch: phase Failed until it does).

Reconciling and Stalled are kstatus's (sigs.k8s.io/cli-utils/pkg/kstatus), which Flux and
kpt wait on: Reconciling while the operator moves toward the spec's version (or waits for KServe
to route a promotion); Stalled when it cannot get there without someone acting (rolled back,
failed, a refused patch). A paused rollout is neither: kstatus reads its Ready=False as in
progress. Neither is ever True with the other.
"""

from __future__ import annotations

from typing import Any

from .phases import BEFORE_TRAFFIC, STEPPING, Phase

MOVING = (*BEFORE_TRAFFIC, *STEPPING, Phase.WAITING)
STUCK = (Phase.ROLLED_BACK, Phase.FAILED)
TYPES = {
    "Ready": (Phase.IDLE, Phase.PROMOTED),
    "Progressing": MOVING,
    "Paused": (Phase.PAUSED,),
    "Degraded": STUCK,
}


def conditions(
    phase: str, message: str, generation: int, now: str, previous: list[dict] | None, degraded: tuple[str, str] | None = None, settling: bool = False
) -> list[dict[str, Any]]:
    """degraded: (reason, message) of a problem that makes the rollout Degraded whatever its phase;
    settling: promoted, but KServe does not yet route the promoted version alone."""
    stalled = phase in STUCK or degraded is not None
    true = {kind for kind, phases in TYPES.items() if phase in phases}
    if settling:
        true.discard("Ready")
    if degraded:
        true.add("Degraded")
    if stalled:
        true.add("Stalled")
    elif phase in MOVING or settling:
        true.add("Reconciling")
    before = {c.get("type"): c for c in previous or []}
    out = []
    for kind in (*TYPES, "Reconciling", "Stalled"):
        status = "True" if kind in true else "False"
        reason, text = phase, message
        if degraded and kind in ("Degraded", "Stalled"):
            reason, text = degraded
        old = before.get(kind) or {}
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": text if status == "True" else "",
                "observedGeneration": generation,
                "lastTransitionTime": old["lastTransitionTime"] if old.get("status") == status and old.get("lastTransitionTime") else now,
            }
        )
    return out
