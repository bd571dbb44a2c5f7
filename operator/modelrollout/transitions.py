"""What every transition of the planner shares: the plan it returns (Traffic, Event, Plan), one
plan's working state (Ctx), and the moves several rules make (the first step, promotion, rollback,
a counted error, a hold). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Unpack

from .analysis import Verdict
from .builds import Build, Runtime, runtime_of
from .phases import BEFORE_TRAFFIC, HELD, ROLLING, Phase
from .schedule import parse_time, timestamp
from .spec import RolloutSpec
from .status import RolloutStatus, Status, count
from .webhooks import HookAnswers

__all__ = ["HELD", "ROLLING", "Ctx", "Event", "Plan", "Status", "Traffic", "has_canary", "traffic_of"]


def resume_phase(status: Status) -> str | None:
    """The phase a rollout is in, or while Failed or Waiting the one it carries on from."""
    return status.get("resumePhase") if status.get("phase") in HELD else status.get("phase")


def has_canary(status: Status) -> bool:
    """The operator has written (or is writing) the candidate into the InferenceService: a rollout
    past its start (a candidate waiting at 0% while paused has not been written yet)."""
    return resume_phase(status) in ROLLING and bool(count(status, "canaryWeight") or status.get("stepRequestedAt"))


@dataclasses.dataclass(frozen=True)
class Traffic:
    stable_version: str
    stable_uri: str
    canary_version: str | None = None
    canary_uri: str | None = None
    canary_weight: int = 0
    evaluating: bool = False  # the candidate runs at 0% with an address, before traffic
    stable_runtime: Runtime | None = None  # None: not recorded, so only storageUris tell versions apart
    canary_runtime: Runtime | None = None

    @property
    def stable_build(self) -> Build:
        return (self.stable_runtime or Runtime()).build(self.stable_uri)

    @property
    def canary_build(self) -> Build | None:
        return None if self.canary_uri is None else (self.canary_runtime or Runtime()).build(self.canary_uri)


@dataclasses.dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    status: Status
    traffic: Traffic | None  # None: a refusal, which moves no traffic (reconcile's _fail)
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None  # seconds until the next look; None: wait for a change
    rule: str = ""  # the RULES entry that fired ("": none did), for reconcile's log


def traffic_of(status: Status) -> Traffic:
    """The candidate runs at 0% before traffic (Evaluating, Shadowing) and while the pre-rollout
    webhooks are asked."""
    return Traffic(
        status["stableVersion"],
        status["stableStorageUri"],
        status.get("canaryVersion"),
        status.get("canaryStorageUri"),
        count(status, "canaryWeight"),
        status.get("phase") in BEFORE_TRAFFIC or status.get("gate") == "pre-rollout",
        runtime_of(status, "stable"),
        runtime_of(status, "canary") if status.get("canaryVersion") else None,
    )


@dataclasses.dataclass
class Ctx:
    """One plan's working state: the status being built and the events it emits."""

    spec: RolloutSpec
    s: Status
    verdict: Verdict | None
    applied: bool
    now: dt.datetime
    pending: str = ""
    external: str | None = None  # someone else changed the InferenceService mid-rollout (ownership.py)
    blocked: str | None = None  # KServe would send what a canary does not take to a revision not running stable
    hooks: HookAnswers = HookAnswers()
    serving: Runtime | None = None  # stable's runtime as the InferenceService and its rolled-out revision show it
    events: list[Event] = dataclasses.field(default_factory=list)

    @property
    def phase(self) -> str:
        return self.s.get("phase", Phase.IDLE.value)

    @property
    def stamp(self) -> str:
        return timestamp(self.now)

    def set(self, **fields: Unpack[RolloutStatus]) -> None:
        """Set status fields (None removes one), checked by mypy against RolloutStatus."""
        self.s.update(fields)

    def go(self, phase: str, reason: str, message: str, warning: bool = False) -> None:
        self.set(phase=str(phase), message=message)  # a plain string in status, not the enum
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    def at_zero(self) -> None:
        """The candidate runs at 0% with an address of its own (a step before traffic), from now."""
        self.set(currentStep=0, canaryWeight=0, stepRequestedAt=self.stamp, stepStartedAt=None, testedAt=None)

    def request_step(self, step: int) -> None:
        """Ask for a step's weight; its hold starts once KServe serves it. Before the first
        traffic, the pre-rollout webhooks (if any) must pass for this candidate: until then it
        runs at 0% (webhooks.py)."""
        self.set(
            currentStep=step, canaryWeight=self.spec.steps[step].weight, stepRequestedAt=self.stamp, stepStartedAt=None, testedAt=None, gate=None
        )
        if self.spec.has_hooks("pre-rollout") and self.s.get("preRolloutPassed") != self.s.get("canaryVersion"):
            self.set(canaryWeight=0, gate="pre-rollout")


def _first_step(c: Ctx) -> str:
    if c.s.get("gate") == "pre-rollout":
        return "at 0% until the pre-rollout webhooks answer 2xx"
    return f"step 1/{len(c.spec.steps)} at {c.spec.steps[0].weight}%"


def promote(c: Ctx, why: str) -> None:
    version, uri = c.s["canaryVersion"], c.s["canaryStorageUri"]
    assert version is not None and uri is not None  # the rules promote only a candidate
    c.set(
        stableVersion=version,
        stableStorageUri=uri,
        canaryVersion=None,
        canaryStorageUri=None,
        stableRuntime=c.s.get("canaryRuntime"),
        canaryRuntime=None,
        canaryWeight=0,
        currentStep=None,
        stepStartedAt=None,
        stepRequestedAt=None,
        inconclusiveSince=None,
        servingVerified=None,
        servingError=None,
        gate=None,
    )
    c.go(Phase.PROMOTED, "Promoted", f"{version} promoted to stable: {why}")


def roll_back(c: Ctx, why: str) -> None:
    """Stable takes everything back; status.servingVerified says once KServe routes so (reconcile.py)."""
    c.set(canaryWeight=0, stepStartedAt=None, stepRequestedAt=None, inconclusiveSince=None, servingVerified=None, servingError=None, gate=None)
    c.go(Phase.ROLLED_BACK, "RolledBack", f"{c.s['canaryVersion']} rolled back to {c.s['stableVersion']}: {why}", warning=True)


def miss_deadline(c: Ctx) -> None:
    what = "run the candidate at 0% with an address of its own" if c.phase in BEFORE_TRAFFIC else f"serve {c.s['canaryWeight']}% from a ready canary"
    roll_back(c, f"KServe did not {what} within the progress deadline ({c.spec.progress_deadline:.0f}s)" + (f": {c.pending}" if c.pending else ""))


def count_error(c: Ctx, what: str, reason: str) -> str | None:
    """One more error in a row, counted apart from Inconclusive as Argo's consecutiveErrorLimit:
    at the limit it rolls back and returns None, else "errors/limit"."""
    errors, limit = count(c.s, "errors") + 1, c.spec.analysis.consecutive_error_limit
    c.set(errors=errors)
    if errors >= limit:
        roll_back(c, f"{what} {errors} times in a row: {reason}")
        return None
    return f"{errors}/{limit}"


def hold(c: Ctx, message: str) -> None:
    if c.phase == Phase.HOLDING:  # one event when holding starts, not one per look
        c.set(message=message)
    else:
        c.go(Phase.HOLDING, "AnalysisInconclusive", message)


def _waited(c: Ctx) -> float:
    asked = parse_time(c.s.get("stepRequestedAt"))
    return 0.0 if asked is None else (c.now - asked).total_seconds()


def first_step(c: Ctx, reason: str, why: str) -> None:
    """Nothing before traffic is left: step 1 is asked for (after the pre-rollout webhooks, if any)."""
    c.request_step(0)
    c.go(Phase.PROGRESSING, reason, why + _first_step(c))
    if c.spec.steps[0].weight >= 100 and not c.s.get("gate"):
        promote(c, "no step below 100% to analyse")
