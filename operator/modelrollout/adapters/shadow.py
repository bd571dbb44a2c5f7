"""The shadow step's measurements: what stable's mirror counted (predictor_shadow_*,
docs/predictor.md) since the step began, from the raw samples as the analysis reads its series
(prometheus.increments: exact per-scrape counts, resets handled, no extrapolation).

Each look reads the whole step again: the counts are few series, and a verdict on everything
since the step began needs nothing kept in status.
"""

from __future__ import annotations

import dataclasses
import math

from ..analysis import Window
from ..shadow import ShadowSample
from ..spec import RolloutSpec
from .measure import Read, rollout_client, scope_of
from .prometheus import PrometheusClient, PrometheusError, increments
from .providers import PredictorSeries, Scope, Target, matchers

DIMENSIONS = PredictorSeries.dimensions | {"outcome"}


def shadow_queries(stable: Target, r: str, scope: Scope = ()) -> dict[str, str]:
    """The mirror runs in stable's predictor, so its series carry stable's model and version."""
    sel = matchers((("model", stable.model), ("version", stable.version), *scope))
    return {name: f"predictor_shadow_{name}_total{{{sel}}}[{r}]" for name in ("requests", "pairs", "disagreements")}


def shadow_sample(answers: dict[str, list[dict]], window: Window) -> ShadowSample | None:
    """None when stable has no mirror series (no --shadow_config, or not scraped yet)."""
    if not answers.get("requests"):
        return None
    outcomes: dict[str, float] = {}
    for labels, _, inc in increments(answers["requests"], window, DIMENSIONS):
        outcomes[labels.get("outcome", "")] = outcomes.get(labels.get("outcome", ""), 0.0) + inc
    by_output: dict[str, dict[str, float]] = {"pairs": {}, "disagreements": {}}
    for name, counts in by_output.items():
        for labels, _, inc in increments(answers.get(name) or [], window, DIMENSIONS):
            counts[labels["output"]] = counts.get(labels["output"], 0.0) + inc
    return ShadowSample(
        by_output["pairs"], by_output["disagreements"], outcomes.get("compared", 0.0), outcomes.get("failed", 0.0), outcomes.get("dropped", 0.0)
    )


class ShadowSource:
    def __init__(self, client: PrometheusClient, scrape_interval: float = 15.0):
        self.client, self.scrape_interval = client, scrape_interval

    def queries(self, stable: Target, window: Window, scope: Scope = ()) -> dict[str, str]:
        # back one scrape before the step: the first increment begins at the sample before it
        r = f"{max(1, math.ceil(window.end - window.since + self.scrape_interval) + 1)}s"
        return shadow_queries(stable, r, scope)

    def measure(self, stable: Target, window: Window, scope: Scope = ()) -> tuple[ShadowSample | None, dict[str, str], str | None]:
        """(sample, queries, error): an unreachable or failing Prometheus is an error, never raised."""
        q = self.queries(stable, window, scope)
        try:
            return shadow_sample({k: self.client.query(v, at=window.end) for k, v in q.items()}, window), q, None
        except PrometheusError as exc:
            return None, q, str(exc)


@dataclasses.dataclass
class PrometheusShadow:
    """The reconciler's shadow Measure: (spec, namespace, stable's version, window) -> (what
    stable's mirror counted, or None; an error reading it, or None), through the Prometheus client
    spec.analysis.prometheus describes (measure.rollout_client). read_secret, read_config_map as
    PrometheusMeasure's."""

    read_secret: Read
    read_config_map: Read

    def __call__(self, spec: RolloutSpec, namespace: str, stable: str, window: Window) -> tuple[ShadowSample | None, str | None]:
        client, error = rollout_client(spec, namespace, self.read_secret, self.read_config_map)
        if client is None:
            return None, error
        target = Target(namespace, spec.inference_service, spec.model_name, stable)
        sample, _, error = ShadowSource(client, spec.analysis.scrape_interval).measure(target, window, scope_of(spec, namespace))
        return sample, error
