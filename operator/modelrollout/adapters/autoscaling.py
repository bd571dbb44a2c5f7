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
    """None: the rollout sets no autoscaling, so its patches leave the InferenceService's own."""

    min_replicas: int | None = None
    max_replicas: int | None = None
    metric: str | None = None
    target: int | None = None

    def fields(self) -> dict:
        """As KServe's component spec spells them (a merge patch without a field leaves it)."""
        named = {"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas, "scaleMetric": self.metric, "scaleTarget": self.target}
        return {k: v for k, v in named.items() if v is not None}


def stable_scale(spec: AutoscalingSpec | None) -> Scale:
    return Scale() if spec is None else Scale(spec.min_replicas, spec.max_replicas, spec.metric, spec.target)
