"""Everything a rollout needs, on loopback, with no Kubernetes cluster: the emulated API server,
real predictor processes (one per model version), a real Prometheus scraping them every second,
the operator, and the traffic driver. Pieces start and stop independently, so scenarios can stop
Prometheus or kill the operator mid-rollout.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import yaml

from predictor.testing import PredictorProcess

from .apiserver import ApiServer
from .driver import TrafficDriver
from .operator import OperatorProcess
from .prometheus import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
VERSIONS = {
    "v1": REPO / "models/cancer/v1",
    "v2": REPO / "models/cancer/v2",
    "v3-errors": REPO / "tests/fixtures/models/cancer/v3-errors",   # fails on about 10% of inputs
    "v3-slow": REPO / "tests/fixtures/models/cancer/v3-slow",       # about 12 ms more per batch
}


def uri_of(version: str) -> str:
    return f"file://{VERSIONS[version]}" if version in VERSIONS else f"file:///models/cancer/{version}"


def inference_service(name: str = "cancer", version: str = "v1") -> str:
    return yaml.safe_dump({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": name},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch",
                                         "storageUri": uri_of(version)}}}})


def model_rollout(version: str, prometheus: str, mode: str = "serverless", steps: list[dict] | None = None,
                  interval: str = "4s", name: str = "cancer", autoscaling: dict | None = None, **analysis) -> str:
    """A rollout with short timings for the local stack; analysis fields override the defaults."""
    spec_analysis = {"prometheus": {"url": prometheus}, "window": "15s", "minRequests": 30, "maxErrorRate": 0.02,
                     "maxLatencyP99": "250ms", "compareToStable": True,
                     # millisecond latencies on a shared 2-core machine jitter: flag a canary only at 2x stable's p99
                     "latencyTolerance": 2.0,
                     "onInconclusive": {"after": "10m", "action": "pause"}, **analysis}
    return yaml.safe_dump({
        "apiVersion": "serving.modelrollout.io/v1alpha1", "kind": "ModelRollout", "metadata": {"name": name},
        "spec": {"inferenceService": name, "model": {"version": version, "storageUri": uri_of(version)},
                 "strategy": {"trafficMode": mode, "interval": interval,
                              "steps": steps or [{"weight": 20}, {"weight": 50}, {"weight": 100}]},
                 "analysis": spec_analysis,
                 "autoscaling": autoscaling or {"minReplicas": 1, "maxReplicas": 4, "metric": "concurrency", "target": 8}}})


class Predictors:
    """One predictor process per version, all serving model `cancer`."""

    def __init__(self, versions: list[str], logs: Path):
        self.processes = {v: PredictorProcess(VERSIONS[v], log_path=logs / f"predictor-{v}.log") for v in versions}

    def __enter__(self) -> "Predictors":
        for p in self.processes.values():
            p.start()
        return self

    def backends(self) -> dict[str, tuple[str, str]]:
        return {uri_of(v): (v, p.http_url) for v, p in self.processes.items()}

    def targets(self) -> list[str]:
        return [p.http_url for p in self.processes.values()]

    def __exit__(self, *exc) -> None:
        for p in self.processes.values():
            p.terminate()


class Rollout:
    """One ModelRollout's run: a fresh API server, the operator and the driver, over shared predictors
    and Prometheus."""

    def __init__(self, predictors: Predictors, prometheus: PrometheusServer, workdir: Path | None = None,
                 mode: str = "serverless", rate: float = 60.0, resync: float = 0.5):
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="localstack-"))
        self.predictors, self.prometheus, self.mode, self.resync = predictors, prometheus, mode, resync
        self.api = ApiServer(self.dir)
        self.operator: OperatorProcess | None = None
        self.driver: TrafficDriver | None = None
        self.rate = rate
        self._stack = contextlib.ExitStack()

    def start_operator(self, log_name: str = "operator.log") -> OperatorProcess:
        self.operator = OperatorProcess(self.api.kubeconfig, self.dir / log_name, resync=self.resync).start()
        self._stack.callback(self.operator.stop)
        return self.operator

    def __enter__(self) -> "Rollout":
        self._stack.enter_context(self.api)
        self.api.kubectl("apply", "-f", "-", input=inference_service())
        self.start_operator()
        self.driver = TrafficDriver(self.api.url, "cancer", self.mode, self.predictors.backends(), rate=self.rate)
        self._stack.enter_context(self.driver)
        return self

    def apply(self, manifest: str) -> None:
        self.api.kubectl("apply", "-f", "-", input=manifest)

    def patch(self, spec: str) -> None:
        self.api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", spec)

    def __exit__(self, *exc) -> None:
        self._stack.close()
