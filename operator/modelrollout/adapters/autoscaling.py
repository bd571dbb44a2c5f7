"""The InferenceService's autoscaling knobs (KServe turns them into an HPA or Knative autoscaler):
min/max replicas and the scale metric and target, for stable and for the canary.

The canary's replicas follow its traffic share (planner.capacity). When the weight rises, the
reconciler writes the new capacity before the new weight, so the canary never takes a share it
has no replicas for; when it falls, traffic moves first.
"""
from __future__ import annotations

import dataclasses

from ..planner import capacity
from ..spec import AutoscalingSpec


@dataclasses.dataclass(frozen=True)
class Scale:
    min_replicas: int
    max_replicas: int
    metric: str
    target: int

    def fields(self) -> dict:
        """As KServe's component spec spells them."""
        return {"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas,
                "scaleMetric": self.metric, "scaleTarget": self.target}


def stable_scale(spec: AutoscalingSpec) -> Scale:
    return Scale(spec.min_replicas, spec.max_replicas, spec.metric, spec.target)


def canary_scale(spec: AutoscalingSpec, weight: int) -> Scale | None:
    """None when the canary takes no traffic."""
    if weight <= 0:
        return None
    low, high = capacity(spec, weight)
    return Scale(low, high, spec.metric, spec.target)
