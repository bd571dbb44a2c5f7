"""Tier 4: the local-stack scenarios on a kind cluster with real KServe (Serverless mode: Knative
routes canaryTrafficPercent), the operator from manifests/, and Prometheus scraping the pods.

Opt-in: runs only with KIND_E2E=1 (the kind-e2e workflow sets it), and then needs docker and
kind; a runner that merely has them never starts a cluster by accident. `e2e/kind/setup.sh`
(called once by the fixture) creates the cluster and installs everything at the versions in
e2e/kind/versions.env. Traffic goes through Kourier (a kubectl port-forward) with the host of the
InferenceService's status.url, and the driver counts responses by the model_version each V2
response carries, so it sees KServe's real split.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml

from e2e.controlplane.process import wait_for as wait_on_condition
from harness.processes import free_port

REPO = Path(__file__).resolve().parents[2]
NS = "models"
pytestmark = pytest.mark.kind


def _why_not_runnable() -> str | None:
    if os.environ.get("KIND_E2E") != "1":
        return "the kind suite is opt-in: set KIND_E2E=1 on a machine with docker and kind (tier 4, e2e/kind/setup.sh)"
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed: the kind suite needs docker, kind and kubectl (tier 4, see e2e/kind/setup.sh)"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "the docker daemon is not reachable: the kind suite needs a running Docker engine"
    return None


if (reason := _why_not_runnable()) is not None:
    pytest.skip(reason, allow_module_level=True)


def kubectl(*args: str, input: str | None = None) -> str:
    return subprocess.run(["kubectl", "--context", "kind-modelrollout-e2e", *args], input=input, text=True,
                          capture_output=True, check=True, timeout=120).stdout


def wait_for(condition, timeout: float, what: str):
    return wait_on_condition(condition, timeout, what, interval=1.0)     # a real cluster: once a second


def status() -> dict:
    return json.loads(kubectl("-n", NS, "get", "mro", "cancer", "-o", "json")).get("status") or {}


def predictor() -> dict:
    return json.loads(kubectl("-n", NS, "get", "isvc", "cancer", "-o", "json"))["spec"]["predictor"]


def uri(version: str) -> str:
    return f"pvc://models/{'fixtures/' if version.startswith('v3') else ''}cancer/{version}"


def rollout(version: str, steps=None, **analysis) -> str:
    return yaml.safe_dump({
        "apiVersion": "serving.modelrollout.io/v1alpha1", "kind": "ModelRollout",
        "metadata": {"name": "cancer", "namespace": NS},
        "spec": {"inferenceService": "cancer", "model": {"version": version, "storageUri": uri(version)},
                 "strategy": {"trafficMode": "serverless", "interval": "30s",
                              "steps": steps or [{"weight": 20}, {"weight": 50}, {"weight": 100}]},
                 "analysis": {"prometheus": {"url": "http://prometheus.monitoring:9090"}, "window": "30s", "scrapeInterval": "2s",
                              "minRequests": 50, "maxErrorRate": 0.02, "maxLatencyP99": "500ms",
                              "onInconclusive": {"after": "10m", "action": "pause"}, **analysis},
                 "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "concurrency", "target": 10}}})


class IngressDriver:
    """V2 requests through Kourier; counts answers by the model_version KServe's routing chose."""

    def __init__(self, host: str, rate: float = 30.0):
        self.port = free_port()
        self.forward = subprocess.Popen(["kubectl", "--context", "kind-modelrollout-e2e", "-n", "kourier-system",
                                         "port-forward", "svc/kourier", f"{self.port}:80"], stdout=subprocess.DEVNULL)
        self.host = host
        self.rate, self.seen, self.errors = rate, Counter(), Counter()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 30], "data": [
            17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4,
            0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656,
            0.7119, 0.2654, 0.4601, 0.1189]}]}).encode()
        deadline = time.monotonic() + 1800
        while not self.stopped.wait(1 / self.rate) and time.monotonic() < deadline:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v2/models/cancer/infer", body,
                                             {"Host": self.host, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    self.seen[json.loads(r.read()).get("model_version", "?")] += 1
            except urllib.error.HTTPError as exc:
                self.errors[exc.code] += 1
            except OSError:
                self.errors["connection"] += 1

    def __enter__(self) -> "IngressDriver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(15)
        self.forward.terminate()


@pytest.fixture(scope="module", autouse=True)
def cluster():
    subprocess.run([str(REPO / "e2e/kind/setup.sh")], check=True, timeout=3600)


@pytest.fixture
def service():
    """A fresh InferenceService serving v1, ready, with no rollout."""
    kubectl("-n", NS, "delete", "mro", "cancer", "--ignore-not-found", "--wait=true")
    kubectl("-n", NS, "delete", "isvc", "cancer", "--ignore-not-found", "--wait=true")
    kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "cancer", "namespace": NS},
        "spec": {"predictor": {"minReplicas": 1, "model": {"modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch",
                                                            "storageUri": uri("v1")}}}}))
    kubectl("-n", NS, "wait", "--for=condition=Ready", "isvc/cancer", "--timeout=600s")
    url = json.loads(kubectl("-n", NS, "get", "isvc", "cancer", "-o", "json"))["status"]["url"]
    with IngressDriver(host=url.split("://", 1)[1]) as driver:
        yield driver


def test_1_healthy_candidate_is_promoted(service):
    kubectl("apply", "-f", "-", input=rollout("v2"))
    wait_for(lambda: status().get("phase") == "Promoted", 900, "promotion")
    wait_for(lambda: predictor()["model"]["storageUri"] == uri("v2") and "canaryTrafficPercent" not in predictor(), 300, "v2 alone")
    assert service.seen["v2"] > 0 and service.errors == Counter()


def test_2_candidate_with_errors_is_rolled_back(service):
    kubectl("apply", "-f", "-", input=rollout("v3-errors"))
    s = wait_for(lambda: (lambda s: s if s.get("phase") in ("RolledBack", "Promoted") else None)(status()), 900, "a verdict")
    assert s["phase"] == "RolledBack" and s["lastAnalysis"]["verdict"] == "Fail"
    # KServe's rollback: the candidate's template stays at 0%, the revision last rolled out (v1) serves
    assert predictor()["canaryTrafficPercent"] == 0 and predictor()["model"]["storageUri"] == uri("v3-errors")
    wait_for(lambda: status().get("servingVerified"), 300, "v1's revision confirmed serving all")
    assert service.seen["v1"] > 0


def test_3_candidate_with_a_latency_regression_is_rolled_back(service):
    kubectl("apply", "-f", "-", input=rollout("v3-slow"))
    s = wait_for(lambda: (lambda s: s if s.get("phase") in ("RolledBack", "Promoted") else None)(status()), 900, "a verdict")
    assert s["phase"] == "RolledBack" and "latency" in s["lastAnalysis"]["reason"]


def test_4_manual_pause_promote_and_abort(service):
    kubectl("apply", "-f", "-", input=rollout("v2"))
    wait_for(lambda: status().get("canaryWeight") == 20, 600, "first step")
    kubectl("-n", NS, "patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"paused":true}}')
    wait_for(lambda: status().get("phase") == "Paused", 120, "paused")
    seen = service.seen["v2"]      # held for longer than a step's interval, measured in canary answers
    wait_for(lambda: service.seen["v2"] > seen + 300, 600, "300 more canary answers while paused")
    assert predictor().get("canaryTrafficPercent") == 20 and status().get("phase") == "Paused"
    kubectl("-n", NS, "patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"promote":"v2"}}')
    wait_for(lambda: status().get("phase") == "Promoted", 300, "promoted")
    kubectl("-n", NS, "patch", "mro", "cancer", "--type", "merge", "-p",
            json.dumps({"spec": {"paused": False, "promote": None, "model": {"version": "v1", "storageUri": uri("v1")}}}))
    wait_for(lambda: status().get("canaryVersion") == "v1", 300, "a rollout back to v1")
    kubectl("-n", NS, "patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"abort":true}}')
    wait_for(lambda: status().get("phase") == "RolledBack", 300, "aborted")


def test_5_prometheus_outage_holds_then_continues(service):
    kubectl("apply", "-f", "-", input=rollout("v2"))
    wait_for(lambda: status().get("canaryWeight") == 20, 600, "first step")
    kubectl("-n", "monitoring", "scale", "deploy/prometheus", "--replicas=0")
    try:
        s = wait_for(lambda: (lambda s: s if s.get("phase") == "Holding" else None)(status()), 300, "Inconclusive")
        assert s["canaryWeight"] == 20 and s["lastAnalysis"]["verdict"] == "Inconclusive"
    finally:
        kubectl("-n", "monitoring", "scale", "deploy/prometheus", "--replicas=1")
    wait_for(lambda: status().get("phase") == "Promoted", 1200, "promotion after the outage")


def test_6_operator_restart_resumes_at_the_same_step(service):
    kubectl("apply", "-f", "-", input=rollout("v2", steps=[{"weight": 20}, {"weight": 50, "hold": "1h"}, {"weight": 100}]))
    before = wait_for(lambda: (lambda s: s if s.get("currentStep") == 1 else None)(status()), 900, "the second step")
    kubectl("-n", "modelrollout-system", "delete", "pod", "-l", "app.kubernetes.io/name=modelrollout-operator")
    kubectl("-n", "modelrollout-system", "rollout", "status", "deploy/modelrollout-operator", "--timeout=300s")
    wait_for(lambda: kubectl("-n", "modelrollout-system", "logs", "deploy/modelrollout-operator").count("succeeded") >= 5,
             120, "the new operator to reconcile a few times")
    after = status()
    assert (after["currentStep"], after["canaryWeight"], after["stepStartedAt"]) == (1, 50, before["stepStartedAt"])
    assert predictor()["canaryTrafficPercent"] == 50
