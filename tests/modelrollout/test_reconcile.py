"""The reconciler's sequencing, with an in-memory Kubernetes adapter and measurements passed in."""
import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from modelrollout.adapters.kube import Conflict, NotFound
from modelrollout.adapters.traffic import merge_patch
from modelrollout.analysis import Measurements, VersionSample
from modelrollout.metrics import OperatorMetrics
from modelrollout.reconcile import Reconciler

EXAMPLE = Path(__file__).resolve().parents[2] / "crds/examples/cancer-serverless.yaml"
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
HEALTHY = VersionSample(1000, 1, ((0.01, 990), (0.1, 1000), (float("inf"), 1000)))


class MemoryKube:
    def __init__(self, rollout: dict, isvc: dict | None):
        self.rollout, self.isvc, self.log, self.conflict = rollout, isvc, [], False

    def get_rollout(self, namespace, name):
        return copy.deepcopy(self.rollout)

    def write_status(self, rollout, status):
        if self.conflict:
            raise Conflict("stale")
        self.rollout["status"] = copy.deepcopy(status)
        self.log.append(("status", status["phase"], status.get("canaryWeight")))

    def get_isvc(self, namespace, name):
        if self.isvc is None:
            raise NotFound(name)
        return copy.deepcopy(self.isvc)

    def patch_isvc(self, namespace, name, patch):
        self.isvc = merge_patch(self.isvc, patch)
        pred = self.isvc["spec"]["predictor"]
        self.log.append(("isvc", pred.get("canaryTrafficPercent"), pred.get("maxReplicas")))
        return copy.deepcopy(self.isvc)

    def emit(self, rollout, event):
        self.log.append(("event", event.reason))


def make(isvc=True, **spec_changes):
    obj = yaml.safe_load(EXAMPLE.read_text())
    obj["spec"].update(spec_changes)
    obj["metadata"].update(namespace="default", generation=1, resourceVersion="1")
    service = {"metadata": {"name": "cancer"}, "spec": {"predictor": {"model": {"storageUri": "pvc://models/cancer/v1"}}}}
    return MemoryKube(obj, service if isvc else None)


def reconciler(kube, clock, measured=None):
    calls = []

    def measure(spec, canary, stable):
        calls.append((spec.model_name, canary, stable))
        return measured or Measurements(HEALTHY, HEALTHY)
    r = Reconciler(kube, measure, OperatorMetrics(), clock=lambda: clock[0])
    return r, calls


def test_start_writes_status_then_capacity_then_weight():
    kube, now = make(), [T0]
    r, calls = reconciler(kube, now)
    requeue = r("default", "cancer")
    assert kube.log == [("status", "Progressing", 5), ("event", "RolloutStarted"), ("isvc", 0, 1), ("isvc", 5, 1)]
    assert requeue == 120 and calls == []                      # the first step holds 2m before any analysis
    assert kube.rollout["status"]["observedGeneration"] == 1


def test_reconciling_again_changes_nothing():
    kube, now = make(), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    before = len(kube.log)
    now[0] = T0 + dt.timedelta(seconds=30)
    r("default", "cancer")
    assert len(kube.log) == before


def test_analysis_runs_when_the_hold_is_over_and_passing_advances():
    kube, now = make(), [T0]
    r, calls = reconciler(kube, now)
    r("default", "cancer")
    now[0] = T0 + dt.timedelta(minutes=2)
    r("default", "cancer")
    assert calls == [("cancer", "v2", "v1")]
    status = kube.rollout["status"]
    assert status["currentStep"] == 1 and status["canaryWeight"] == 25 and status["lastAnalysis"]["verdict"] == "Pass"
    assert kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert r.metrics.decisions.labels("Pass")._value.get() == 1


def test_a_stale_read_changes_nothing():
    kube, now = make(), [T0]
    kube.conflict = True
    r, _ = reconciler(kube, now)
    with pytest.raises(Conflict):
        r("default", "cancer")
    assert kube.log == [] and "status" not in kube.rollout


def test_invalid_spec_or_missing_service_fails_without_touching_traffic():
    kube, now = make(isvc=False), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Failed" and "not found" in kube.rollout["status"]["message"]
    assert kube.log == [("status", "Failed", None), ("event", "InferenceServiceNotFound")]
    kube.rollout["spec"]["strategy"]["steps"] = [{"weight": 50}]
    kube.isvc = {"metadata": {}, "spec": {"predictor": {"model": {"storageUri": "pvc://models/cancer/v1"}}}}
    r("default", "cancer")
    assert "the last step must have weight 100" in kube.rollout["status"]["message"]
    assert all(entry[0] != "isvc" for entry in kube.log)
