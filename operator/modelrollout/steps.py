"""Step arithmetic over spec.strategy.steps. Pure."""

from __future__ import annotations

from typing import Any, Mapping

from .spec import RolloutSpec
from .status import count


def hold_of(spec: RolloutSpec, step: int) -> float:
    """Seconds a step is served before its analysis."""
    hold = spec.steps[min(step, len(spec.steps) - 1)].hold
    return spec.interval if hold is None else hold


def is_last_analysed(spec: RolloutSpec, step: int) -> bool:
    """The 100% step is the promotion itself, never an analysed canary (as Flagger's maxWeight):
    in serverless mode KServe treats a revision at 100% as rolled out, after which a rollback
    cannot bring stable back; in standard mode a fixed-size canary would carry everything."""
    return step + 1 >= len(spec.steps) or spec.steps[step + 1].weight >= 100


def planned_looks(spec: RolloutSpec) -> int:
    """Analyses a rollout that passes every step makes: one per step below 100%."""
    return sum(1 for s in spec.steps if s.weight < 100)


def steps_changed(spec: RolloutSpec, status: Mapping[str, Any]) -> bool:
    """The status's step no longer exists at its weight (steps were edited mid-rollout). A
    candidate waiting at 0% (started while paused) has no step weight yet."""
    step, weight = status.get("currentStep"), count(status, "canaryWeight")
    return step is not None and weight > 0 and (step >= len(spec.steps) or spec.steps[step].weight != weight)


def snapped_step(spec: RolloutSpec, weight: int) -> int:
    """After `steps` was edited mid-rollout: the first step at or above the current weight, but
    below 100% (which is promotion, not a step to route to)."""
    i = next((i for i, s in enumerate(spec.steps) if s.weight >= weight), len(spec.steps) - 1)
    return i - 1 if spec.steps[i].weight >= 100 and i > 0 else i
