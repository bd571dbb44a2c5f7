"""Shared by the operator's integration tests: healthy synthetic predictor series for Prometheus,
an InferenceService manifest, a kubectl watch that records every version of an object, and
waiting on conditions."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, start_http_server

from predictor.metrics import PredictorMetrics
from predictor.testing import free_port


def wait_for(condition, timeout=60.0, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class SteadyTraffic:
    """The predictor's series for given versions, growing at a steady healthy rate (a real exporter)."""

    def __init__(self, model: str, versions: list[str], per_second: int = 100, latency: float = 0.005):
        self.registry = CollectorRegistry()
        self.metrics = PredictorMetrics(self.registry)
        self.models = [self.metrics.for_model(model, v) for v in versions]
        self.per_second, self.latency = per_second, latency
        self.port = free_port()
        self._stop = threading.Event()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "SteadyTraffic":
        self.server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
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
        self.server.shutdown()


def isvc(name: str, uri: str) -> str:
    return yaml.safe_dump({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                           "metadata": {"name": name},
                           "spec": {"predictor": {"model": {"modelFormat": {"name": "pytorch"}, "storageUri": uri}}}})


def rollout(name: str, version: str, uri: str, prometheus: str, mode: str = "serverless",
            steps: list[dict] | None = None, **analysis) -> str:
    return yaml.safe_dump({
        "apiVersion": "serving.modelrollout.io/v1alpha1", "kind": "ModelRollout", "metadata": {"name": name},
        "spec": {"inferenceService": name, "model": {"version": version, "storageUri": uri},
                 "strategy": {"trafficMode": mode, "interval": "2s",
                              "steps": steps or [{"weight": 10}, {"weight": 40}, {"weight": 100}]},
                 "analysis": {"prometheus": {"url": prometheus}, "window": "10s", "minRequests": 50, **analysis},
                 "autoscaling": {"minReplicas": 2, "maxReplicas": 10, "metric": "concurrency", "target": 8}}})


class Recorder:
    """`kubectl get RESOURCE NAME -w -o json`: every version of one object, in order."""

    def __init__(self, api, resource: str, name: str):
        kubectl = Path(sys.executable).with_name("kubectl")
        self.proc = subprocess.Popen([str(kubectl), "get", resource, name, "-w", "-o", "json", "--output-watch-events=false"],
                                     env=api.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.versions: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buffer += line
            try:
                obj, end = decoder.raw_decode(buffer.strip())
            except ValueError:
                continue
            buffer = ""
            if not self.versions or self.versions[-1] != obj:
                self.versions.append(obj)

    def stop(self) -> list[dict]:
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)
        return self.versions


def events_of(api, name: str) -> list[dict]:
    items = json.loads(api.kubectl("get", "events", "-o", "json").stdout)["items"]
    return [e for e in items if (e.get("regarding") or {}).get("name") == name]


def get(api, resource: str, name: str) -> dict:
    return json.loads(api.kubectl("get", resource, name, "-o", "json").stdout)
