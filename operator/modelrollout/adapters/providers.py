"""Which series tell a version's requests, errors and latencies: a provider names them in PromQL
and says how to read their labels; adapters/prometheus.py reads every provider the same way,
per scrape from the raw samples (spec.analysis.metrics.provider, docs/providers.md).

- modelrollout: this project's predictor_* series; the only one with the batch design effect and
  the predictions the drift gate compares.
- knative: the queue-proxy Knative Serving puts in every serverless pod, whatever the runtime
  (Triton, sklearn, vLLM, ...): kn_serving_invocation_duration_seconds, as Knative Serving 1.21
  (the pinned release) exports it through OpenTelemetry, told apart by Knative revision.
- custom: the user's PromQL for a requests counter, an errors counter and a latency histogram,
  with {{placeholders}}, as Flagger's MetricTemplate.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

from ..sources import PLACEHOLDERS, CustomQueries, MetricsSpec
from ..spec import SpecError

Scope = tuple[tuple[str, str], ...]  # label matchers beyond model and version


@dataclasses.dataclass(frozen=True)
class Target:
    """One version, as a provider names it."""

    namespace: str
    inference_service: str
    model: str
    version: str
    revisions: tuple[str, ...] = ()  # serverless: the Knative revisions that run it


def label_value(value: str) -> str:
    """A string as a PromQL label value inside double quotes (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def matchers(pairs: Scope) -> str:
    return ",".join(f'{k}="{label_value(v)}"' for k, v in pairs)


_REGEX_SPECIAL = set(".+*?()|[]{}^$\\")


def revision_regex(revisions: tuple[str, ...]) -> str:
    """Names as an RE2 alternation inside a PromQL string: a regex metacharacter gets a
    backslash, written twice (PromQL strings take Go's escapes, where a lone one is an error)."""
    return "|".join("".join("\\\\" + c if c in _REGEX_SPECIAL else c for c in r) for r in revisions)


class PredictorSeries:
    """This project's predictor (docs/predictor.md, "Metrics")."""

    name = "modelrollout"
    lacks: tuple[str, ...] = ()
    # labels that tell a series of one pod apart from its others; the rest name the pod
    dimensions = frozenset({"__name__", "code", "protocol", "le", "status_class", "output", "bin"})

    def failed(self, labels: Mapping[str, str]) -> bool:
        return labels.get("code", "").startswith("5")

    def queries(self, target: Target, r: str, step: str, scope: Scope) -> dict[str, str]:
        sel = matchers((("model", target.model), ("version", target.version), *scope))
        return {
            "requests": f"predictor_requests_total{{{sel}}}[{r}]",
            # successes only: fast 429s and errors must not pull the canary's p99 down
            "latency": f'predictor_request_duration_seconds_bucket{{{sel},status_class="2xx"}}[{r}]',
            # the batch design effect: peers / batched (absent on predictors without batching)
            "batched": f"predictor_batch_requests_total{{{sel}}}[{r}]",
            "peers": f"predictor_batch_peers_total{{{sel}}}[{r}]",
            # what the version answered, for the drift gate (outputs whose config declares predictions)
            "predictions": f"predictor_predictions_total{{{sel}}}[{r}]",
        }


KNATIVE_LACKS = (
    "batch design effect: queue-proxy sees requests, not forward passes (errors are corrected for their spread over scrapes only)",
    "predictions: no drift gate",
)


@dataclasses.dataclass(frozen=True)
class KnativeSeries:
    """queue-proxy's request histogram (pkg/queue/request_metric.go at Knative Serving v0.48.1):
    kn.serving.invocation.duration, seconds, with the attribute http.response.status_code; probes
    are not counted. Its revision is a resource attribute, which the OpenTelemetry exporter puts
    on target_info only, so the scrape must label the series with the pod's revision label
    (charts/: a PodMonitor with podTargetLabels [serving.knative.dev/revision])."""

    revision_label: str
    name = "knative"
    lacks = KNATIVE_LACKS
    dimensions = frozenset({"__name__", "le", "http_response_status_code", "otel_scope_name", "otel_scope_version", "otel_scope_schema_url"})

    def failed(self, labels: Mapping[str, str]) -> bool:
        return labels.get("http_response_status_code", "").startswith("5")

    def queries(self, target: Target, r: str, step: str, scope: Scope) -> dict[str, str]:
        if not target.revisions:
            return {}  # no revision runs this version: nothing of it can be read
        sel = f'{matchers(scope)},{self.revision_label}=~"{revision_regex(target.revisions)}"'.lstrip(",")
        base = "kn_serving_invocation_duration_seconds"
        return {"requests": f"{base}_count{{{sel}}}[{r}]", "latency": f'{base}_bucket{{{sel},http_response_status_code=~"2.."}}[{r}]'}


def render(template: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values[m.group(1)], template)


@dataclasses.dataclass(frozen=True)
class CustomSeries:
    """The user's templates, each an instant vector of a cumulative counter (requests, errors) or
    of a cumulative histogram's buckets (latency, with `le`). Each is read as a subquery at the
    scrape interval, `(template)[range:interval]`, so it may aggregate (keep a `pod` label to
    keep pods apart). Placeholders (spec.PLACEHOLDERS) are filled with label-escaped values;
    {{revision}} is a regex alternation of the version's Knative revisions."""

    templates: CustomQueries
    name = "custom"
    dimensions = frozenset({"__name__", "le"})

    @property
    def lacks(self) -> tuple[str, ...]:
        missing = [
            "batch design effect: not in custom series (errors are corrected for their spread over scrapes only)",
            "predictions: no drift gate",
        ]
        if not self.templates.latency:
            missing.append("latency: no latency template, no latency gates")
        return tuple(missing)

    def failed(self, labels: Mapping[str, str]) -> bool:
        return False  # errors come from their own template

    def queries(self, target: Target, r: str, step: str, scope: Scope) -> dict[str, str]:
        values = {
            "namespace": label_value(target.namespace),
            "inferenceService": label_value(target.inference_service),
            "model": label_value(target.model),
            "version": label_value(target.version),
            "revision": revision_regex(target.revisions),
            "window": r,
        }
        assert set(values) == set(PLACEHOLDERS)
        out = {"requests": self.templates.requests, "errors": self.templates.errors, "latency": self.templates.latency}
        return {k: f"({render(t, values)})[{r}:{step}]" for k, t in out.items() if t}


Provider = PredictorSeries | KnativeSeries | CustomSeries


def provider(spec: MetricsSpec) -> Provider:
    if spec.provider == "modelrollout":
        return PredictorSeries()
    if spec.provider == "knative":
        return KnativeSeries(spec.revision_label)
    if spec.provider == "custom" and spec.custom is not None:
        return CustomSeries(spec.custom)
    raise SpecError(f"spec.analysis.metrics.provider: {spec.provider!r} is not modelrollout, knative or custom")
