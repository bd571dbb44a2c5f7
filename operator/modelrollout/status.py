"""A ModelRollout's status: every field the operator writes, typed (RolloutStatus), and the one
place where what the apiserver returns is read (parse_status, at reconcile's edge). All progress lives here, so a restarted
operator resumes where its predecessor stopped.

The fields are JSON values as the CRD's status schema holds them; None in a plan's status
removes the field (status is written as a merge patch). Timestamps are RFC 3339 strings
(schedule.timestamp).
"""

from __future__ import annotations

from typing import Any, Mapping, TypedDict, cast

__all__ = ["COUNTS", "RolloutStatus", "Status", "count", "parse_status"]


class RolloutStatus(TypedDict, total=False):
    phase: str  # a Phase
    resumePhase: str | None  # where a Failed or Waiting rollout carries on from
    message: str
    observedGeneration: int
    conditions: list[dict[str, Any]]
    # who serves what
    stableVersion: str
    stableStorageUri: str
    stableRuntime: dict[str, Any] | None
    canaryVersion: str | None
    canaryStorageUri: str | None
    canaryRuntime: dict[str, Any] | None
    canaryWeight: int
    currentStep: int | None
    stepRequestedAt: str | None  # when the step's weight was asked of KServe
    stepStartedAt: str | None  # when KServe's status showed it served: the hold counts from here
    # the analysis
    lastAnalysis: dict[str, Any]
    evidence: dict[str, Any] | None
    errorEvidence: dict[str, Any] | None
    measuredTo: str | None
    testedAt: str | None
    looks: int
    extraLooks: int
    failures: int
    errors: int  # unreadable looks in a row
    inconclusiveSince: str | None
    guardLooks: int
    guardedAt: str | None
    # before traffic
    evaluation: dict[str, Any] | None
    evaluatedAt: str | None
    shadow: dict[str, Any] | None
    shadowStartedAt: str | None
    shadowCheckedAt: str | None
    shadowLooks: int
    mirror: dict[str, Any] | None  # what was written for stable's mirror
    mirrorError: str | None
    # manual control and webhooks
    retry: int
    pausedBy: str | None  # spec | policy
    gate: str | None  # pre-rollout | confirm-promotion
    gateCheckedAt: str | None
    preRolloutPassed: str | None
    rollbackCheckedAt: str | None
    # the InferenceService as the operator left it
    isvcGeneration: int | None
    isvcPatching: bool | None
    routedAt: str | None
    routingError: str | None
    servingVerified: bool | None
    servingError: str | None


# What the planner builds and reads; its fields are set a few at a time (Ctx.set, which mypy
# checks against RolloutStatus), None removes one. Tests check that every key the operator
# writes is in the CRD's status schema.
Status = RolloutStatus
COUNTS = ("canaryWeight", "looks", "extraLooks", "failures", "errors", "guardLooks", "shadowLooks", "retry")


def count(s: Mapping[str, Any], key: str) -> int:
    """A counter (or currentStep) of the status, 0 where absent or removed (None)."""
    return int(s.get(key) or 0)


def parse_status(raw: Mapping[str, Any] | None) -> Status:
    """The status as the apiserver returned it, counters as integers (0 where removed); fields
    this operator does not know are kept as they are."""
    s: dict[str, Any] = dict(raw or {})
    for key in COUNTS:
        if key in s:
            s[key] = count(s, key)
    return cast(RolloutStatus, s)
