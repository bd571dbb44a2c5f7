"""Healthy synthetic predictor series for Prometheus: the predictor's own metrics classes,
served by a real exporter and growing at a steady rate."""
from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, start_http_server

from predictor.metrics import PredictorMetrics
from harness.processes import free_port


class Exporter:
    """The predictor's own metric series, served on loopback as a predictor would serve them."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.metrics = PredictorMetrics(self.registry)
        self.port = free_port()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()


class SteadyTraffic(Exporter):
    """An exporter whose series for the given versions grow at a steady healthy rate."""

    def __init__(self, model: str, versions: list[str], per_second: int = 100, latency: float = 0.005):
        super().__init__()
        self.models = [self.metrics.for_model(model, v) for v in versions]
        self.per_second, self.latency = per_second, latency
        self._stop = threading.Event()

    def __enter__(self) -> "SteadyTraffic":
        super().__enter__()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for m in self.models:
                for _ in range(self.per_second // 20):
                    m.request_done("rest", 200, self.latency)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()
        super().__exit__()
