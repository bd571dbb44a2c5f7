"""The traffic driver: V2 REST requests to the predictor processes, split between versions the
way the platform routes them, and what the clients saw per version.

The split comes from a `routes()` callable, read every 0.2 s: on the control plane that is
e2e.controlplane.routing.PlatformRoutes, which reads what Knative wrote into the KIngress and
KServe into the HTTPRoute. Backends map each storageUri to the predictor process serving it.

Only 127.0.0.1, at a bounded rate, until stop() or max_seconds.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import random
import threading
import time
from typing import Callable

import numpy as np


def breast_cancer_rows() -> np.ndarray:
    from sklearn.datasets import load_breast_cancer   # the data the cancer models were trained on
    return load_breast_cancer().data.astype(np.float32)


@dataclasses.dataclass
class VersionStats:
    requests: int = 0
    errors: int = 0
    latencies: list[float] = dataclasses.field(default_factory=list)

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)) if lat else (lambda q: None)
        return {"requests": self.requests, "errors": self.errors, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}


class TrafficDriver:
    def __init__(self, routes: Callable[[], list[tuple[str, int]]], backends: dict[str, tuple[str, str]],
                 model: str = "cancer", rate: float = 60.0, workers: int = 4,
                 max_seconds: float = 900.0, rows: Callable[[], np.ndarray] = breast_cancer_rows):
        """routes: the current [(storageUri, percent)]; backends: storageUri -> (version, 'host:port'
        of its predictor's REST endpoint)."""
        self.routes, self.backends, self.model = routes, backends, model
        self.rate, self.workers, self.max_seconds = rate, workers, max_seconds
        self.rows = rows()
        self.split: list[tuple[str, int]] = []
        self.stats: dict[str, VersionStats] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def _read_routing(self) -> None:
        try:
            split = self.routes()
        except Exception:       # the apiserver restarting or briefly away: keep the last split
            return
        self.split = [(uri, pct) for uri, pct in split if pct > 0 and uri in self.backends]

    def _watch_routing(self) -> None:
        while not self.stopped.wait(0.2):
            self._read_routing()

    def _send(self, conns: dict, uri: str, row: np.ndarray) -> tuple[int, float]:
        version, address = self.backends[uri]
        body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, len(row)], "data": row.tolist()}]})
        started = time.perf_counter()
        try:
            conn = conns.get(address) or conns.setdefault(address, http.client.HTTPConnection(address, timeout=10))
            conn.request("POST", f"/v2/models/{self.model}/infer", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            code = response.status
        except (OSError, http.client.HTTPException):
            conns.pop(address, None)
            code = 599                              # connection failure, counted as an error
        return code, time.perf_counter() - started

    def _work(self, seed: int) -> None:
        rng, conns = random.Random(seed), {}
        period = self.workers / self.rate
        deadline = time.monotonic() + self.max_seconds
        next_at = time.monotonic()
        while not self.stopped.is_set() and time.monotonic() < deadline:
            split = self.split
            if split:
                uri = rng.choices([u for u, _ in split], weights=[p for _, p in split])[0]
                code, seconds = self._send(conns, uri, self.rows[rng.randrange(len(self.rows))])
                with self.lock:
                    s = self.stats.setdefault(self.backends[uri][0], VersionStats())
                    s.requests += 1
                    s.errors += code != 200
                    s.latencies.append(seconds)
            next_at += period
            self.stopped.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> "TrafficDriver":
        self._read_routing()
        self.threads = [threading.Thread(target=self._watch_routing, daemon=True)]
        self.threads += [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(self.workers)]
        for t in self.threads:
            t.start()
        return self

    def report(self) -> dict[str, dict]:
        with self.lock:
            return {version: s.summary() for version, s in sorted(self.stats.items())}

    def landing(self, count: int, timeout: float = 60.0) -> dict[str, int]:
        """Where the next `count` requests go, per version (waits until they have been sent)."""
        total = lambda report: sum(r["requests"] for r in report.values())   # noqa: E731
        before = self.report()
        deadline = time.monotonic() + timeout
        while total(after := self.report()) < total(before) + count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the driver sent {total(after) - total(before)} of {count} requests in {timeout:.0f}s")
            self.stopped.wait(0.1)
        return {v: r["requests"] - before.get(v, {}).get("requests", 0) for v, r in after.items()
                if r["requests"] > before.get(v, {}).get("requests", 0)}

    def stop(self) -> dict[str, dict]:
        self.stopped.set()
        for t in self.threads:
            t.join(15)
        return self.report()

    def __enter__(self) -> "TrafficDriver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
