"""The ModelRollout spec as typed, validated values. The CRD schema refuses most bad specs;
this module refuses the rest (and anything that reaches the operator another way) with a
message that names the field.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from kubernetes.utils import parse_quantity

from .fields import LABEL as _LABEL, SpecError, _float, _int, parse_duration
from .sources import MetricsSpec, PrometheusAccess, parse_access, parse_metrics
from .webhooks import NotificationSpec, WebhookSpec, parse_notifications, parse_webhooks

__all__ = ["SpecError", "parse_duration", "parse_spec", "RolloutSpec", "AnalysisSpec"]


@dataclasses.dataclass(frozen=True)
class Step:
    weight: int
    hold: float | None = None  # seconds at this weight before analysis; None: the strategy's interval


@dataclasses.dataclass(frozen=True)
class AnalysisSpec:
    prometheus_url: str
    min_requests: int = 100
    max_error_rate: float = 0.01
    max_latency_p99: float | None = None  # seconds
    compare_to_stable: bool = True
    significance: float = 0.05  # p-value below which canary counts as worse than stable
    error_rate_margin: float = 0.0002  # non-inferiority margin: how much worse than stable's error rate is negligible
    latency_tolerance: float = 1.2  # canary p99 may be up to this factor of stable's
    window: float = 60.0  # seconds of metrics each analysis looks at
    scrape_interval: float = 15.0  # seconds between Prometheus's scrapes of a pod (the shipped PodMonitor's)
    failure_limit: int = 1  # failed analyses that trigger a rollback
    consecutive_error_limit: int = 4  # unreadable-metrics analyses in a row that trigger a rollback
    inconclusive_after: float = 600.0  # seconds of Inconclusive before the policy applies
    inconclusive_action: str = "pause"  # pause | rollback
    namespace_label: str = "namespace"  # the series' label holding the pod's namespace; "": not scoped
    selector: tuple[tuple[str, str], ...] = ()  # more exact label matchers, e.g. one scrape job
    prediction_drift: DriftSpec | None = None  # off unless the spec asks for it
    guardrail: GuardrailSpec | None = None  # a look at every resync during a hold; off unless asked for
    metrics: MetricsSpec = MetricsSpec()  # which series: the provider
    access: PrometheusAccess = PrometheusAccess()  # authorization, CA and headers for Prometheus


@dataclasses.dataclass(frozen=True)
class GuardrailSpec:
    """spec.analysis.guardrail: roll back during a hold on an error rate significantly above this."""

    max_error_rate: float = 0.2
    share: float = 0.1  # of significance, for the guard's looks; the analysis spends the rest


@dataclasses.dataclass(frozen=True)
class DriftSpec:
    """spec.analysis.predictionDrift: canary's prediction distribution against stable's."""

    output: str | None = None  # the output to judge; None: every output with counted predictions
    max_distance: float = 0.1  # Jensen-Shannon distance (base 2, 0..1) that is still no drift
    min_predictions: int = 100  # per version and output, before the gate can say anything


@dataclasses.dataclass(frozen=True)
class EvaluationSpec:
    """spec.evaluation: a labelled holdout scored on candidate and stable before any traffic."""

    config_map: str  # the ConfigMap (rollout's namespace) holding the holdout
    metric: str  # accuracy | logLoss | mae
    key: str = "holdout.json"
    output: str | None = None  # the output scored; None: the model's first
    margin: float = 0.0  # how much worse than stable, in the metric's units, still passes
    batch_size: int = 32  # rows per V2 request
    timeout: float = 30.0  # seconds per request
    gateway: str | None = None  # send to this ingress with KServe's URL as Host; None: to the URL


@dataclasses.dataclass(frozen=True)
class ShadowSpec:
    """spec.strategy.shadow: stable mirrors live requests to the candidate, at 0%, before any
    traffic step; the paired answers are judged by shadow.py."""

    fraction: float = 0.1  # of stable's requests mirrored
    min_pairs: int = 200  # per output, before a Pass
    max_disagreement: float = 0.05  # the share of pairs that may differ
    duration: float = 600.0  # seconds, at most, before spec.analysis.onInconclusive decides
    share: float = 0.2  # of the rollout's significance its looks may spend
    gateway: str | None = None  # mirror to this ingress with the candidate's host; None: to its address


@dataclasses.dataclass(frozen=True)
class AutoscalingSpec:
    min_replicas: int = 1
    max_replicas: int = 1
    metric: str = "concurrency"
    target: int = 70


@dataclasses.dataclass(frozen=True)
class RolloutSpec:
    inference_service: str
    version: str
    storage_uri: str
    steps: tuple[Step, ...]
    interval: float
    traffic_mode: str  # serverless | standard
    analysis: AnalysisSpec
    autoscaling: AutoscalingSpec | None  # None: the InferenceService's own autoscaling is left alone
    paused: bool = False
    promote: str | None = None  # a version: promote it now if it is the candidate
    abort: bool = False  # roll back now, and stay rolled back while true
    retry: int = 0  # raise it to start again after a rollback
    model_name: str = ""  # the predictor's `model` metrics label; default inference_service
    progress_deadline: float = 600.0  # seconds a step may wait for KServe to serve its weight
    evaluation: EvaluationSpec | None = None  # off unless the spec asks for it
    shadow: ShadowSpec | None = None  # off unless the spec asks for it
    webhooks: tuple[WebhookSpec, ...] = ()
    notifications: tuple[NotificationSpec, ...] = ()
    runtime_version: str | None = None  # spec.model.runtimeVersion: the runtime image's tag; None: stable's
    resources: Mapping | None = None  # spec.model.resources, over stable's; None: stable's

    def has_hooks(self, kind: str) -> bool:
        return any(h.type == kind for h in self.webhooks)


def parse_steps(raw: Any) -> tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError("spec.strategy.steps: at least one step is required")
    steps, previous = [], 0
    for i, item in enumerate(raw):
        field = f"spec.strategy.steps[{i}]"
        if not isinstance(item, Mapping):
            raise SpecError(f"{field}: expected a mapping with a weight")
        weight = _int(item, "weight", field, -1, 1, 100)
        if weight <= previous:
            raise SpecError(f"{field}.weight: weights must increase strictly ({weight} follows {previous})")
        hold = item.get("hold")
        steps.append(Step(weight, None if hold is None else parse_duration(hold, f"{field}.hold")))
        previous = weight
    if previous != 100:
        raise SpecError(f"spec.strategy.steps: the last step must have weight 100, not {previous}")
    return tuple(steps)


def _scope(prometheus: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Which series are this rollout's: its namespace's (namespaceLabel), and those matching the
    selector, so one model name in two namespaces, or one pod scraped by two jobs, is not mixed."""
    label = prometheus.get("namespaceLabel", "namespace")
    if label is None or (label != "" and not _LABEL.match(str(label))):
        raise SpecError(f"spec.analysis.prometheus.namespaceLabel: {label!r} is not a Prometheus label name")
    selector = prometheus.get("selector") or {}
    if not isinstance(selector, Mapping):
        raise SpecError("spec.analysis.prometheus.selector: expected a mapping of label names to values")
    for key, value in selector.items():
        if not _LABEL.match(str(key)) or key in ("model", "version", label) or not isinstance(value, str):
            raise SpecError(
                f"spec.analysis.prometheus.selector: {key!r}: {value!r} is not a label name and string value "
                f"(model, version and the namespace label are set by the operator)"
            )
    return str(label), tuple(sorted(selector.items()))


# What KServe accepts per deployment mode: Knative's autoscaler (KPA) scales on concurrency or rps,
# an HPA on cpu or memory (KServe's validateScalingKPACompExtension / HPA validation).
SCALE_METRICS = {"serverless": ("concurrency", "rps"), "standard": ("cpu", "memory")}
SCALER = {"serverless": "Knative's autoscaler", "standard": "a HorizontalPodAutoscaler"}
DEFAULT_METRIC = {"serverless": "concurrency", "standard": "cpu"}
DEFAULT_TARGET = {"concurrency": 8, "rps": 100, "cpu": 70, "memory": 70}


def _two_scrapes(a: Mapping[str, Any]) -> None:
    """A window must hold two whole scrape intervals of a pod (one sample is no increment, and one
    increment no spread), though its first scrape after the step's start may come a whole interval late."""
    window = parse_duration(a.get("window", "1m"), "spec.analysis.window")
    scrape = parse_duration(a.get("scrapeInterval", "15s"), "spec.analysis.scrapeInterval")
    if scrape <= 0 or window < 3 * scrape:
        raise SpecError(
            f"spec.analysis.window ({window:g}s) must hold two whole scrape intervals after a step "
            f"starts, three of spec.analysis.scrapeInterval ({scrape:g}s): at least {3 * scrape:g}s"
        )


def _drift(raw: Any) -> DriftSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SpecError("spec.analysis.predictionDrift: expected a mapping such as {maxDistance: 0.1}")
    output = raw.get("output")
    if output is not None and (not isinstance(output, str) or not output):
        raise SpecError("spec.analysis.predictionDrift.output: expected an output's name")
    where = "spec.analysis.predictionDrift"
    return DriftSpec(
        output=output, max_distance=_float(raw, "maxDistance", where, 0.1, 0.0, 1.0), min_predictions=_int(raw, "minPredictions", where, 100, 1)
    )


def _guardrail(raw: Any) -> GuardrailSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError("spec.analysis.guardrail: expected a mapping such as {maxErrorRate: 0.2}")
    where = "spec.analysis.guardrail"
    return GuardrailSpec(max_error_rate=_float(raw, "maxErrorRate", where, 0.2, 0.0, 1.0), share=_float(raw, "share", where, 0.1, 0.01, 0.5))


METRICS = ("accuracy", "logLoss", "mae")


def _before_traffic(raw: Any, where: str, mode: str, example: str) -> None:
    """A step before traffic (the evaluation, the shadow step) is a mapping, in serverless mode."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: expected a mapping such as {example}")
    if mode != "serverless":
        # KServe runs a standard-mode canary at ceil(minReplicas x trafficPercent / 100) replicas:
        # a candidate at 0% has no pods to answer the holdout or the mirror
        raise SpecError(f"{where}: needs trafficMode serverless; in standard mode KServe runs no pods for a canary at 0%")


def _evaluation(raw: Any, mode: str) -> EvaluationSpec | None:
    if raw is None:
        return None
    where = "spec.evaluation"
    _before_traffic(raw, where, mode, "{dataset: {configMap: holdout}, metric: accuracy}")
    dataset = raw.get("dataset") or {}
    if not isinstance(dataset, Mapping) or not isinstance(dataset.get("configMap"), str) or not dataset["configMap"]:
        raise SpecError(f"{where}.dataset.configMap: the name of a ConfigMap holding the holdout is required")
    metric = raw.get("metric")
    if metric not in METRICS:
        raise SpecError(f"{where}.metric: must be one of {', '.join(METRICS)}, got {metric!r}")
    if raw.get("output") is not None and (not isinstance(raw["output"], str) or not raw["output"]):
        raise SpecError(f"{where}.output: expected a non-empty string")
    return EvaluationSpec(
        config_map=dataset["configMap"],
        metric=metric,
        key=str(dataset.get("key") or "holdout.json"),
        output=raw.get("output"),
        margin=_float(raw, "margin", where, 0.0, 0.0, 1e9),
        batch_size=_int(raw, "batchSize", where, 32, 1, 10000),
        timeout=parse_duration(raw.get("timeout", "30s"), f"{where}.timeout"),
        gateway=_gateway(raw, where),
    )


def _gateway(raw: Mapping, where: str) -> str | None:
    gateway = raw.get("gateway")
    if gateway is None:
        return None
    if not isinstance(gateway, str) or not gateway.startswith(("http://", "https://")):
        raise SpecError(f"{where}.gateway: must be a URL starting with http:// or https://, got {gateway!r}")
    return gateway.rstrip("/")


def _shadow(raw: Any, mode: str, guardrail: GuardrailSpec | None) -> ShadowSpec | None:
    if raw is None:
        return None
    where = "spec.strategy.shadow"
    _before_traffic(raw, where, mode, "{fraction: 0.1, maxDisagreement: 0.05}")
    unknown = sorted(set(raw) - {"fraction", "minPairs", "maxDisagreement", "duration", "share", "gateway"})
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}")
    fraction = _float(raw, "fraction", where, 0.1, 0.0, 1.0)
    if fraction <= 0:
        raise SpecError(f"{where}.fraction: must be above 0 (no request would be mirrored), got {fraction!r}")
    shadow = ShadowSpec(
        fraction=fraction,
        min_pairs=_int(raw, "minPairs", where, 200, 1),
        max_disagreement=_float(raw, "maxDisagreement", where, 0.05, 0.0, 1.0),
        duration=parse_duration(raw.get("duration", "10m"), f"{where}.duration"),
        share=_float(raw, "share", where, 0.2, 0.01, 0.5),
        gateway=_gateway(raw, where),
    )
    if shadow.duration <= 0:
        raise SpecError(f"{where}.duration: must be above 0")
    if guardrail is not None and shadow.share + guardrail.share > 0.8:
        raise SpecError(
            f"{where}.share ({shadow.share:g}) and spec.analysis.guardrail.share ({guardrail.share:g}) "
            "must leave the analysis at least 0.2 of spec.analysis.significance"
        )
    return shadow


def parse_spec(spec: Mapping[str, Any]) -> RolloutSpec:
    if not spec.get("inferenceService"):
        raise SpecError("spec.inferenceService: the name of an InferenceService is required")
    model = spec.get("model") or {}
    if not model.get("version") or not model.get("storageUri"):
        raise SpecError("spec.model: version and storageUri are required")
    strategy = spec.get("strategy") or {}
    mode = strategy.get("trafficMode", "serverless")
    if mode not in ("serverless", "standard"):
        raise SpecError(f"spec.strategy.trafficMode: must be serverless or standard, got {mode!r}")
    a = spec.get("analysis") or {}
    prometheus = (a.get("prometheus") or {}).get("url")
    if not prometheus:
        raise SpecError("spec.analysis.prometheus.url: required")
    policy = a.get("onInconclusive") or {}
    action = policy.get("action", "pause")
    if action not in ("pause", "rollback"):
        raise SpecError(f"spec.analysis.onInconclusive.action: must be pause or rollback, got {action!r}")
    p99 = a.get("maxLatencyP99")
    _two_scrapes(a)
    namespace_label, selector = _scope(a.get("prometheus") or {})
    analysis = AnalysisSpec(
        prometheus_url=str(prometheus).rstrip("/"),
        min_requests=_int(a, "minRequests", "spec.analysis", 100, 1),
        max_error_rate=_float(a, "maxErrorRate", "spec.analysis", 0.01, 0.0, 1.0),
        max_latency_p99=None if p99 is None else parse_duration(p99, "spec.analysis.maxLatencyP99"),
        compare_to_stable=bool(a.get("compareToStable", True)),
        significance=_float(a, "significance", "spec.analysis", 0.05, 0.0001, 0.5),
        error_rate_margin=_float(a, "errorRateMargin", "spec.analysis", 0.0002, 0.0, 1.0),
        latency_tolerance=_float(a, "latencyTolerance", "spec.analysis", 1.2, 1.0, 100.0),
        window=parse_duration(a.get("window", "1m"), "spec.analysis.window"),
        scrape_interval=parse_duration(a.get("scrapeInterval", "15s"), "spec.analysis.scrapeInterval"),
        failure_limit=_int(a, "failureLimit", "spec.analysis", 1, 1),
        consecutive_error_limit=_int(a, "consecutiveErrorLimit", "spec.analysis", 4, 1),
        inconclusive_after=parse_duration(policy.get("after", "10m"), "spec.analysis.onInconclusive.after"),
        inconclusive_action=action,
        namespace_label=namespace_label,
        selector=selector,
        prediction_drift=_drift(a.get("predictionDrift")),
        guardrail=_guardrail(a.get("guardrail")),
        metrics=parse_metrics(a.get("metrics"), mode, a.get("predictionDrift") is not None, p99 is not None),
        access=parse_access(a.get("prometheus") or {}),
    )
    promote = spec.get("promote")
    if promote not in (None, "") and str(promote) != str(model["version"]):
        raise SpecError(f"spec.promote: must name the candidate spec.model.version ({model['version']!r}), got {promote!r}")
    return RolloutSpec(
        inference_service=str(spec["inferenceService"]),
        version=str(model["version"]),
        storage_uri=str(model["storageUri"]),
        steps=parse_steps(strategy.get("steps")),
        interval=parse_duration(strategy.get("interval", "1m"), "spec.strategy.interval"),
        traffic_mode=mode,
        analysis=analysis,
        autoscaling=_autoscaling(spec.get("autoscaling"), mode),
        progress_deadline=parse_duration(strategy.get("progressDeadline", "10m"), "spec.strategy.progressDeadline"),
        paused=bool(spec.get("paused", False)),
        promote=None if promote in (None, "") else str(promote),
        abort=bool(spec.get("abort", False)),
        retry=_int(spec, "retry", "spec", 0, 0),
        model_name=str(model.get("name") or spec["inferenceService"]),
        evaluation=_evaluation(spec.get("evaluation"), mode),
        shadow=_shadow(strategy.get("shadow"), mode, analysis.guardrail),
        webhooks=parse_webhooks(spec.get("webhooks")),
        notifications=parse_notifications(spec.get("notifications")),
        runtime_version=_runtime_version(model.get("runtimeVersion")),
        resources=_resources(model.get("resources")),
    )


def _runtime_version(raw: Any) -> str | None:
    """An image tag, as KServe puts it on the runtime's image (docker's tag grammar)."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"[\w][\w.-]{0,127}", raw):
        raise SpecError(f"spec.model.runtimeVersion: expected an image tag such as 0.21.0, got {raw!r}")
    return raw


def _resources(raw: Any) -> dict | None:
    """Container resources: requests and limits of quantities, each request within its limit."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw or set(raw) - {"requests", "limits"}:
        raise SpecError("spec.model.resources: expected requests and/or limits, such as {requests: {cpu: '2'}}")
    out: dict[str, dict[str, str]] = {}
    for section, values in raw.items():
        if not isinstance(values, Mapping) or not values:
            raise SpecError(f"spec.model.resources.{section}: expected a mapping of resource names to quantities")
        for name, value in values.items():
            try:
                parse_quantity(value)
            except ValueError:
                raise SpecError(f"spec.model.resources.{section}.{name}: {value!r} is not a quantity such as 500m or 2Gi")
        out[section] = {str(k): str(v) for k, v in values.items()}
    for name, value in out.get("requests", {}).items():
        limit = out.get("limits", {}).get(name)
        if limit is not None and parse_quantity(value) > parse_quantity(limit):
            raise SpecError(f"spec.model.resources.requests.{name}: {value} is more than its limit {limit}")
    return out


def _autoscaling(s: Any, mode: str) -> AutoscalingSpec | None:
    """The stable's autoscaling the rollout sets; absent, the InferenceService's own stay as they are."""
    if s is None:
        return None
    if not isinstance(s, Mapping):
        raise SpecError("spec.autoscaling: expected a mapping such as {minReplicas: 1, maxReplicas: 4}")
    autoscaling = AutoscalingSpec(
        min_replicas=_int(s, "minReplicas", "spec.autoscaling", 1, 0),
        max_replicas=_int(s, "maxReplicas", "spec.autoscaling", max(1, s.get("minReplicas", 1) or 1), 1),
        metric=str(s.get("metric") or DEFAULT_METRIC[mode]),
        target=_int(s, "target", "spec.autoscaling", DEFAULT_TARGET[s.get("metric") or DEFAULT_METRIC[mode]], 1),
    )
    if autoscaling.metric not in SCALE_METRICS[mode]:
        raise SpecError(
            f"spec.autoscaling.metric: {mode} mode scales on {' or '.join(SCALE_METRICS[mode])}, not {autoscaling.metric!r} ({SCALER[mode]})"
        )
    if autoscaling.max_replicas < autoscaling.min_replicas:
        raise SpecError(f"spec.autoscaling.maxReplicas ({autoscaling.max_replicas}) must be >= minReplicas ({autoscaling.min_replicas})")
    return autoscaling
