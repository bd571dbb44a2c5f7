"""The predictor's Prometheus series. Every series carries `model` and `version`, so one
Prometheus can compare a canary with its stable version; the operator's default queries use
exactly these names (docs/predictor.md, "Metrics").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from .shadow import Paired

# The E12 series from 1 ms to 10 s: adjacent bounds at most 1.25x apart, so a 20% change in a
# p99 moves it across a bound instead of inside one bucket.
_E12 = (1.0, 1.2, 1.5, 1.8, 2.2, 2.7, 3.3, 3.9, 4.7, 5.6, 6.8, 8.2)
LATENCY_BUCKETS = tuple(round(m * 10.0**e, 6) for e in range(-3, 1) for m in _E12) + (10.0,)
QUEUE_BUCKETS = (0.0001, 0.00025, 0.0005) + LATENCY_BUCKETS  # queue waits are often sub-millisecond
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

PROTOCOLS = ("rest", "grpc")
# Every status predict() can answer. 429 (queue full) and 499 (the client cancelled or its
# deadline passed) are the client's or the load's doing, not the model's, so they are not 5xx.
CODES = (200, 400, 413, 429, 499, 500, 503, 504)
CANCELLED = 499
SHADOW_OUTCOMES = ("compared", "failed", "dropped")  # a mirrored request's (mirror.py)


def status_class(code: int) -> str:
    return f"{code // 100}xx"


class PredictorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        labels = ["model", "version"]
        self.requests = Counter(
            "predictor_requests",
            "Inference requests that reached the model, by protocol and HTTP status (gRPC requests report the HTTP equivalent of their status code)",
            labels + ["protocol", "code"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "predictor_request_duration_seconds",
            "Time from a request reaching the model to its answer, "
            "by status class (2xx, 4xx, 5xx) so fast rejections do not pull the successes' quantiles down",
            labels + ["protocol", "status_class"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # A forward pass's requests share its failure and its latency: the operator divides its
        # counts by peers/batched (the size-biased batch size) so its tests do not take them
        # for independent requests.
        self.batched = Counter(
            "predictor_batch_requests", "Requests answered by forward passes (each pass adds its request count)", labels, registry=registry
        )
        self.peers = Counter(
            "predictor_batch_peers",
            "For every request answered by a forward pass, the requests in that pass (itself included): each pass adds its request count squared",
            labels,
            registry=registry,
        )
        self.batch_rows = Histogram("predictor_batch_size", "Rows in each forward pass", labels, buckets=BATCH_BUCKETS, registry=registry)
        self.queue_seconds = Histogram(
            "predictor_queue_delay_seconds",
            "Time a request waited in the queue before its batch ran",
            labels,
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self.inference_seconds = Histogram(
            "predictor_inference_duration_seconds", "Time of each forward pass", labels, buckets=LATENCY_BUCKETS, registry=registry
        )
        self.queue_rows = Gauge("predictor_queue_depth", "Rows waiting in the batcher's queue", labels, registry=registry)
        self.predictions = Counter(
            "predictor_predictions",
            "Predictions answered, by output and bin (a class label, or a value bin's upper bound), for outputs whose config declares `predictions`",
            labels + ["output", "bin"],
            registry=registry,
        )
        # The shadow mirror (mirror.py): a class output's pairs and disagreements, a value
        # output's paired differences (candidate minus this version), from which the operator
        # tests agreement without labels.
        self.shadow_requests = Counter(
            "predictor_shadow_requests",
            "Requests mirrored to a candidate, by outcome: compared, failed (no valid answer) or dropped (the mirror's queue was full)",
            labels + ["outcome"],
            registry=registry,
        )
        self.shadow_pairs = Counter(
            "predictor_shadow_pairs", "Paired predictions of mirrored requests, by output", labels + ["output"], registry=registry
        )
        self.shadow_disagreements = Counter(
            "predictor_shadow_disagreements", "Paired predictions whose class (or declared value bin) differs", labels + ["output"], registry=registry
        )
        self.shadow_difference = Gauge(
            "predictor_shadow_difference_sum",
            "Sum of paired differences, candidate minus this version, of value outputs",
            labels + ["output"],
            registry=registry,
        )
        self.shadow_squares = Counter(
            "predictor_shadow_difference_squares", "Sum of squared paired differences of value outputs", labels + ["output"], registry=registry
        )

    def for_model(self, model: str, version: str) -> "ModelMetrics":
        return ModelMetrics(self, model, version)


class ModelMetrics:
    """One model version's children of the series; also the batcher's Observer."""

    def __init__(self, metrics: PredictorMetrics, model: str, version: str):
        self._m = metrics
        self._labels = {"model": model, "version": version}
        self._batch_rows = metrics.batch_rows.labels(**self._labels)
        self._batched = metrics.batched.labels(**self._labels)
        self._peers = metrics.peers.labels(**self._labels)
        self._queue_seconds = metrics.queue_seconds.labels(**self._labels)
        self._inference_seconds = metrics.inference_seconds.labels(**self._labels)
        self._queue_rows = metrics.queue_rows.labels(**self._labels)
        self._queue_rows.set(0)
        # Every child exists at zero from the start: Prometheus's increase() cannot count what a
        # series held at its first scrape, so a lazily created code="500" would lose its first errors.
        self._children: dict[tuple[str, int], tuple] = {}  # labels() costs more than the update itself
        self._predictions: dict[tuple[str, str], Any] = {}
        self._shadow_outcomes: dict[str, Any] = {}  # the mirror's (count_shadow), when it runs
        self._shadow_outputs: dict[str, tuple] = {}
        for protocol in PROTOCOLS:
            for code in CODES:
                self._child(protocol, code)

    def _child(self, protocol: str, code: int) -> tuple:
        if (protocol, code) not in self._children:
            self._children[protocol, code] = (
                self._m.requests.labels(**self._labels, protocol=protocol, code=str(code)),
                self._m.request_seconds.labels(**self._labels, protocol=protocol, status_class=status_class(code)),
            )
        return self._children[protocol, code]

    def request_done(self, protocol: str, code: int, seconds: float) -> None:
        count, latency = self._children.get((protocol, code)) or self._child(protocol, code)
        count.inc()
        latency.observe(seconds)

    def batch_done(self, rows: int, requests: int, seconds: float) -> None:
        self._batch_rows.observe(rows)
        self._batched.inc(requests)
        self._peers.inc(requests * requests)
        self._inference_seconds.observe(seconds)

    def count_predictions(self, output: str, bins: tuple[str, ...]) -> None:
        """An output whose predictions are counted: every bin's series exists from zero."""
        for b in bins:
            self._predictions[output, b] = self._m.predictions.labels(**self._labels, output=output, bin=b)

    def predicted(self, output: str, counts: dict[str, int]) -> None:
        for b, n in counts.items():
            self._predictions[output, b].inc(n)

    def count_shadow(self, outputs: tuple[str, ...]) -> None:
        """The mirror's series, every child from zero (as the request counts, for the same reason)."""
        m, labels = self._m, self._labels
        self._shadow_outcomes = {o: m.shadow_requests.labels(**labels, outcome=o) for o in SHADOW_OUTCOMES}
        self._shadow_outputs = {
            o: tuple(series.labels(**labels, output=o) for series in (m.shadow_pairs, m.shadow_disagreements, m.shadow_difference, m.shadow_squares))
            for o in outputs
        }

    def shadow_outcome(self, outcome: str) -> None:
        self._shadow_outcomes[outcome].inc()

    def shadow_pairs(self, pairs: Sequence[Paired]) -> None:
        for p in pairs:
            count, disagreements, difference, squares = self._shadow_outputs[p.output]
            count.inc(p.pairs)
            if p.disagreements is not None:
                disagreements.inc(p.disagreements)
            if p.difference_sum is not None:
                difference.inc(p.difference_sum)
                squares.inc(p.difference_squares or 0.0)

    def waited(self, seconds: float) -> None:
        self._queue_seconds.observe(seconds)

    def queue_depth(self, rows: int) -> None:
        self._queue_rows.set(rows)
