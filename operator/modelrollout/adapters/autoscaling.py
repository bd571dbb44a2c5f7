"""The InferenceService's autoscaling knobs (KServe turns them into an HPA or Knative's
autoscaler): min/max replicas and the scale metric and target.

They are the stable's, and a serverless candidate runs with the same ones: its revision template
is written once per rollout, so it is sized for the 100% it takes when promoted. A standard-mode
canary runs at fixed replicas (traffic.StandardRouter).
"""
from __future__ import annotations

import dataclasses

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
