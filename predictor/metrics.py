"""The predictor's Prometheus series. Every series carries `model` and `version`, so one
Prometheus can compare a canary with its stable version; the operator's default queries use
exactly these names (README, "Metrics").
"""
from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class PredictorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY):
        labels = ["model", "version"]
        self.requests = Counter(
            "predictor_requests", "Inference requests that reached the model, by protocol and HTTP status "
            "(gRPC requests report the HTTP equivalent of their status code)",
            labels + ["protocol", "code"], registry=registry)
        self.request_seconds = Histogram(
            "predictor_request_duration_seconds", "Time from a request reaching the model to its answer",
            labels + ["protocol"], buckets=LATENCY_BUCKETS, registry=registry)
        self.batch_rows = Histogram(
            "predictor_batch_size", "Rows in each forward pass", labels, buckets=BATCH_BUCKETS, registry=registry)
        self.queue_seconds = Histogram(
            "predictor_queue_delay_seconds", "Time a request waited in the queue before its batch ran",
            labels, buckets=LATENCY_BUCKETS, registry=registry)
        self.inference_seconds = Histogram(
            "predictor_inference_duration_seconds", "Time of each forward pass", labels,
            buckets=LATENCY_BUCKETS, registry=registry)
        self.queue_rows = Gauge(
            "predictor_queue_depth", "Rows waiting in the batcher's queue", labels, registry=registry)

    def for_model(self, model: str, version: str) -> "ModelMetrics":
        return ModelMetrics(self, model, version)


class ModelMetrics:
    """One model version's children of the series; also the batcher's Observer."""

    def __init__(self, metrics: PredictorMetrics, model: str, version: str):
        self._m = metrics
        self._labels = {"model": model, "version": version}
        self._batch_rows = metrics.batch_rows.labels(**self._labels)
        self._queue_seconds = metrics.queue_seconds.labels(**self._labels)
        self._inference_seconds = metrics.inference_seconds.labels(**self._labels)
        self._queue_rows = metrics.queue_rows.labels(**self._labels)
        self._queue_rows.set(0)

    def request_done(self, protocol: str, code: int, seconds: float) -> None:
        self._m.requests.labels(**self._labels, protocol=protocol, code=str(code)).inc()
        self._m.request_seconds.labels(**self._labels, protocol=protocol).observe(seconds)

    def batch_done(self, rows: int, seconds: float) -> None:
        self._batch_rows.observe(rows)
        self._inference_seconds.observe(seconds)

    def waited(self, seconds: float) -> None:
        self._queue_seconds.observe(seconds)

    def queue_depth(self, rows: int) -> None:
        self._queue_rows.set(rows)
