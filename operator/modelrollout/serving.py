"""After a serverless promotion or rollback: does KServe route stable alone? Pure: (spec, status,
what KServe routes, what it routes next, now) -> status fields and events.

KServe's status once showed stable alone while it was about to send the rolled-out candidate
everything, so both what the revisions taking traffic run and what KServe's own bookkeeping
routes next must be stable. Until they are (past SETTLE_SECONDS since the last patch) the
rollout is Failed, reason ServingMismatch, never Promoted or RolledBack; it returns once KServe
catches up (resumePhase).
"""

from __future__ import annotations

import datetime as dt
from .adapters.isvc import all_to, shown
from .builds import Build
from .phases import Phase
from .schedule import parse_time
from .spec import RolloutSpec
from .status import Status
from .transitions import Event, traffic_of

SETTLE_SECONDS = 30.0  # after a patch, how long KServe may take before a promotion or rollback it does not show is reported
Split = list[tuple[Build, int]]


def verify_serving(spec: RolloutSpec, s: Status, routing: Split | None, coming: Split | None, now: dt.datetime) -> tuple[Status, list[Event]]:
    """routing: [(what runs, percent)] of the revisions KServe's status routes to (None: not all
    known yet); coming: what KServe's next reconcile routes (the router's next_split)."""
    if spec.traffic_mode != "serverless" or s.get("phase") not in (Phase.PROMOTED, Phase.ROLLED_BACK):
        return {}, []
    if routing is None:
        return {}, []  # KServe has not caught up yet: look again later
    stable = traffic_of(s).stable_build
    if all_to(routing, stable) and all_to(coming, stable):  # and KServe's next reconcile will not replace it
        if not s.get("servingError"):
            return {"servingVerified": True}, []
        return {"servingVerified": True, "servingError": None}, [
            Event("Normal", "ServingRestored", f"KServe routes all traffic to {stable.describe()} again")
        ]
    routed = parse_time(s.get("routedAt"))
    if routed is not None and (now - routed).total_seconds() < SETTLE_SECONDS:
        return {"servingVerified": None}, []  # KServe may still be applying the last patch
    now_routed = not all_to(routing, stable) or coming is None
    split = routing if now_routed else coming or []  # what it routes, or will
    message = f"KServe {'routes' if now_routed else 'is about to route'} {shown(split)}; stable {stable.describe()} should serve all"
    # reported once: status is written (and announced) only when it changes
    return {"servingVerified": None, "servingError": message, "phase": str(Phase.FAILED), "resumePhase": s["phase"]}, [
        Event("Warning", "ServingMismatch", message)
    ]
