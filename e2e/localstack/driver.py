"""The traffic driver: V2 REST requests to the predictor processes, split between stable and
canary by the InferenceService's current routing, the way KServe would route them, and what
the clients saw per version.

Routing, read from the InferenceService every 0.2 s:
- serverless: the predictor's storageUri (the latest revision) gets canaryTrafficPercent, the
  last revision that was rolled out at 100% gets the rest; with no canaryTrafficPercent the latest
  gets all and becomes the rolled-out one (KServe's LatestRolledoutRevision).
- standard: each spec.canary[] entry gets its trafficPercent, the predictor's storageUri the rest.

Only 127.0.0.1, at a bounded rate, until stop() or max_seconds.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import random
import threading
import time
import urllib.request
from typing import Callable

import numpy as np


def breast_cancer_rows() -> np.ndarray:
    from sklearn.datasets import load_breast_cancer   # the data the cancer models were trained on
    return load_breast_cancer().data.astype(np.float32)


def kserve_split(isvc: dict, mode: str, rolled_out: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """[(storageUri, percent)] for this InferenceService, and the rolled-out URI after it (serverless)."""
    spec = isvc.get("spec") or {}
    predictor = spec.get("predictor") or {}
    latest = ((predictor.get("model") or {}).get("storageUri")) or ""
    if mode == "standard":
        canaries = [(c["predictor"]["model"]["storageUri"], int(c.get("trafficPercent") or 0)) for c in spec.get("canary") or []]
        return [(latest, 100 - sum(p for _, p in canaries)), *canaries], latest
    pct = predictor.get("canaryTrafficPercent")
    if pct is None or int(pct) >= 100 or rolled_out is None:
        return [(latest, 100)], latest
    return [(rolled_out, 100 - int(pct)), (latest, int(pct))], rolled_out


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
    def __init__(self, api_url: str, isvc: str, mode: str, backends: dict[str, tuple[str, str]],
                 model: str = "cancer", rate: float = 60.0, workers: int = 4, namespace: str = "default",
                 max_seconds: float = 900.0, rows: Callable[[], np.ndarray] = breast_cancer_rows):
        """backends: storageUri -> (version, 'host:port' of its predictor's REST endpoint)."""
        self.isvc_url = f"{api_url}/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{isvc}"
        self.mode, self.backends, self.model = mode, backends, model
        self.rate, self.workers, self.max_seconds = rate, workers, max_seconds
        self.rows = rows()
        self.split: list[tuple[str, int]] = []
        self.rolled_out: str | None = None
        self.stats: dict[str, VersionStats] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def _read_routing(self) -> None:
        try:
            with urllib.request.urlopen(self.isvc_url, timeout=2) as r:
                isvc = json.loads(r.read())
        except OSError:
            return
        split, self.rolled_out = kserve_split(isvc, self.mode, self.rolled_out)
        self.split = [(uri, pct) for uri, pct in split if pct > 0]

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
        self._read_routing()            # know the rolled-out revision before any canary appears
        self.threads = [threading.Thread(target=self._watch_routing, daemon=True)]
        self.threads += [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(self.workers)]
        for t in self.threads:
            t.start()
        return self

    def report(self) -> dict[str, dict]:
        with self.lock:
            return {version: s.summary() for version, s in sorted(self.stats.items())}

    def stop(self) -> dict[str, dict]:
        self.stopped.set()
        for t in self.threads:
            t.join(15)
        return self.report()

    def __enter__(self) -> "TrafficDriver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
