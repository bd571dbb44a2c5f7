"""The reconciler's sequencing, with an in-memory Kubernetes adapter and measurements passed in."""
import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from modelrollout.adapters.kube import Conflict, NotFound, RoutingError
from modelrollout.adapters.traffic import merge_patch
from modelrollout.analysis import PASS, Measurements, Verdict, VersionSample
from modelrollout.metrics import OperatorMetrics
from modelrollout.schedule import POLL_APPLIED
from modelrollout.reconcile import Reconciler

EXAMPLE = Path(__file__).resolve().parents[2] / "crds/examples/cancer-serverless.yaml"
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
HEALTHY = VersionSample(1000, 1, ((0.01, 990), (0.1, 1000), (float("inf"), 1000)))


class MemoryKube:
    def __init__(self, rollout: dict, isvc: dict | None):
        self.rollout, self.isvc, self.log, self.conflict, self.refuse = rollout, isvc, [], False, None
        self.revisions: dict[str, str] = {}       # the test's input: which model each Knative revision runs

    def get_rollout(self, namespace, name):
        return copy.deepcopy(self.rollout)

    def write_status(self, rollout, status):
        if self.conflict:
            raise Conflict("stale")
        self.rollout["status"] = merge_patch(self.rollout.get("status") or {}, status)   # a merge patch: None removes
        self.log.append(("status", status["phase"], status.get("canaryWeight")))

    def get_isvc(self, namespace, name):
        if self.isvc is None:
            raise NotFound(name)
        return copy.deepcopy(self.isvc)

    def patch_isvc(self, namespace, name, patch):
        if self.refuse:
            raise RoutingError(self.refuse)
        self.isvc = merge_patch(self.isvc, patch)
        pred = self.isvc["spec"]["predictor"]
        self.log.append(("isvc", pred.get("canaryTrafficPercent"), pred.get("maxReplicas")))
        return copy.deepcopy(self.isvc)

    def get_revision(self, namespace, name):
        if name not in self.revisions:
            raise NotFound(name)
        return {"metadata": {"name": name, "annotations": {
            "internal.serving.kserve.io/storage-initializer-sourceuri": self.revisions[name]}}}

    def emit(self, rollout, event):
        self.log.append(("event", event.reason))


def make(isvc=True, **spec_changes):
    obj = yaml.safe_load(EXAMPLE.read_text())
    obj["spec"].update(spec_changes)
    obj["metadata"].update(namespace="default", generation=1, resourceVersion="1")
    return MemoryKube(obj, rolled_out() if isvc else None)


def rolled_out() -> dict:
    """An InferenceService whose first revision KServe has rolled out (it serves v1)."""
    return {"metadata": {"name": "cancer", "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
            "spec": {"predictor": {"model": {"storageUri": "pvc://models/cancer/v1"}}},
            "status": {"components": {"predictor": {"latestRolledoutRevision": "cancer-predictor-00001"}}}}


def reconciler(kube, clock, measured=None):
    calls = []

    def measure(spec, canary, stable, window, namespace):
        calls.append((spec.model_name, canary, stable, window))
        assert namespace == "default"
        return measured or Measurements(HEALTHY, HEALTHY)
    r = Reconciler(kube, measure, OperatorMetrics(), clock=lambda: clock[0])
    return r, calls


def test_start_writes_status_then_one_patch_with_the_weight_and_stable_capacity():
    kube, now = make(), [T0]
    r, calls = reconciler(kube, now)
    requeue = r("default", "cancer")
    assert kube.log == [("status", "Progressing", 5), ("event", "RolloutStarted"), ("isvc", 5, 20)]
    assert requeue == POLL_APPLIED and calls == []             # looks again for KServe to serve 5%
    assert kube.rollout["status"]["observedGeneration"] == 1


def test_reconciling_again_changes_nothing():
    kube, now = make(), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    before = len(kube.log)
    now[0] = T0 + dt.timedelta(seconds=30)
    r("default", "cancer")
    assert len(kube.log) == before


def kserve_reports(kube: MemoryKube, weight: int) -> None:
    """The test's input: KServe's status with `weight` on a ready latest revision, which runs v2."""
    kube.revisions.update({"cancer-predictor-00001": "pvc://models/cancer/v1", "cancer-predictor-00002": "pvc://models/cancer/v2"})
    kube.isvc["status"] = {"components": {"predictor": {
        "latestCreatedRevision": "cancer-predictor-00002", "latestRolledoutRevision": "cancer-predictor-00001",
        "traffic": [{"tag": "prev", "revisionName": "cancer-predictor-00001", "percent": 100 - weight},
                    {"tag": "latest", "revisionName": "cancer-predictor-00002", "latestRevision": True, "percent": weight}]}}}


def test_the_hold_starts_when_kserve_serves_the_weight_then_analysis_passes_and_advances():
    kube, now = make(), [T0]
    r, calls = reconciler(kube, now)
    r("default", "cancer")
    now[0] = T0 + dt.timedelta(minutes=5)
    r("default", "cancer")                                     # KServe has not confirmed 5%: nothing judged
    assert calls == [] and kube.rollout["status"].get("stepStartedAt") is None
    kserve_reports(kube, 5)
    r("default", "cancer")
    assert kube.rollout["status"]["stepStartedAt"] == "2026-11-22T12:05:00Z" and calls == []
    now[0] = T0 + dt.timedelta(minutes=5, seconds=130)
    r("default", "cancer")
    assert calls == [("cancer", "v2", "v1", 60)]               # the spec's 1m window, all after the step was served
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
    kube.isvc = rolled_out()
    r("default", "cancer")
    assert "the last step must have weight 100" in kube.rollout["status"]["message"]
    assert all(entry[0] != "isvc" for entry in kube.log)


@pytest.mark.parametrize("annotation, predictor, reason", [
    ("RawDeployment", {}, "TrafficModeMismatch"),                     # a serverless rollout on a standard service
    ("Serverless", {"canaryTrafficPercent": 25}, "CanaryInPlace"),    # someone else's canary: stable unknown
])
def test_what_cannot_be_acted_on_fails_before_anything_is_written(annotation, predictor, reason):
    kube, now = make(), [T0]
    kube.isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = annotation
    kube.isvc["spec"]["predictor"].update(predictor)
    before = copy.deepcopy(kube.isvc)
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Failed" and kube.log[-1] == ("event", reason)
    assert kube.isvc == before


def test_an_inference_service_with_no_mode_yet_waits_for_kserve_then_the_rollout_starts():
    """No annotation and no status.deploymentMode: KServe has not reconciled it yet."""
    kube, now = make(), [T0]
    del kube.isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    del kube.isvc["status"]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Waiting" and kube.log[-1] == ("event", "DeploymentModeUnknown")
    kube.isvc = rolled_out()
    kube.isvc["metadata"]["annotations"] = {}
    kube.isvc["status"]["deploymentMode"] = "Serverless"        # as KServe writes it
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Progressing" and kube.rollout["status"].get("resumePhase") is None


def test_a_serverless_rollout_waits_for_kserve_to_roll_out_the_first_revision_then_starts():
    """Before KServe has rolled out a revision it gives the latest one all traffic whatever
    canaryTrafficPercent says: nothing is written until its status names one."""
    kube, now = make(), [T0]
    del kube.isvc["status"]                                    # created a moment ago: KServe has said nothing
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    s = kube.rollout["status"]
    assert s["phase"] == "Waiting" and "no rolled-out revision yet" in s["message"]
    assert [e for e in kube.log if e[0] != "status"] == [("event", "NotRolledOut")]
    assert {c["type"]: c["status"] for c in s["conditions"]} == {      # waiting is not a failure
        "Ready": "False", "Progressing": "True", "Paused": "False", "Degraded": "False"}
    kube.isvc["status"] = {"components": {"predictor": {"latestCreatedRevision": "cancer-predictor-00001"}}}
    r("default", "cancer")                                     # created, not yet rolled out: still waiting
    assert all(e[0] != "isvc" for e in kube.log)
    kube.isvc = rolled_out()
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Progressing" and kube.log[-1] == ("isvc", 5, 20)


def test_a_refused_patch_reaches_status_events_and_metrics_once_and_clears_when_accepted():
    kube, now = make(), [T0]
    kube.refuse = "422 Unprocessable Entity: admission webhook denied the request"
    r, _ = reconciler(kube, now)
    assert r("default", "cancer") == 5.0
    status = kube.rollout["status"]
    degraded = {c["type"]: c for c in status["conditions"]}["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "RoutingFailed") and "webhook denied" in degraded["message"]
    assert status.get("stepStartedAt") is None                  # nothing claims the weight is served
    r("default", "cancer")
    assert [e for e in kube.log if e[0] == "event"] == [("event", "RolloutStarted"), ("event", "RoutingFailed")]
    assert r.metrics.routing_errors._value.get() == 2
    kube.refuse = None
    r("default", "cancer")
    assert kube.log[-1] == ("event", "RoutingRestored") and kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 5
    assert {c["type"]: c for c in kube.rollout["status"]["conditions"]}["Degraded"]["status"] == "False"


@pytest.mark.parametrize("serving, verified, reason", [
    ("pvc://models/cancer/v1", True, None),                   # KServe's last rolled-out revision is stable
    ("pvc://models/cancer/v2", None, "ServingMismatch"),      # it is the candidate: say so
])
def test_after_a_rollback_the_revision_kserve_routes_to_must_run_stable(serving, verified, reason):
    kube, now = make(abort=True), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")                                    # abort set from the start: nothing rolls out
    kube.rollout["status"].update(phase="RolledBack", canaryVersion="v2", canaryStorageUri="pvc://models/cancer/v2")
    kube.isvc["spec"]["predictor"].update(canaryTrafficPercent=0, model={"storageUri": "pvc://models/cancer/v2"})
    kserve_reports(kube, 0)
    kube.revisions["cancer-predictor-00001"] = serving
    r("default", "cancer")
    now[0] = T0 + dt.timedelta(seconds=60)                    # past the time KServe may take to settle
    r("default", "cancer")
    status = kube.rollout["status"]
    assert status.get("servingVerified") is verified
    degraded = {c["type"]: c for c in status["conditions"]}["Degraded"]
    if reason:
        assert degraded["reason"] == reason and "100% to pvc://models/cancer/v2" in degraded["message"]
        assert kube.log[-1] == ("event", "ServingMismatch")
        r("default", "cancer")
        assert kube.log.count(("event", "ServingMismatch")) == 1          # announced once, not every look


def test_a_refusal_is_written_and_announced_once_however_often_it_is_reconciled():
    kube, now = make(), [T0]
    kube.isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Standard"
    r, _ = reconciler(kube, now)
    for _ in range(3):
        r("default", "cancer")
    assert kube.log == [("status", "Failed", None), ("event", "TrafficModeMismatch")]


def test_a_rollout_being_deleted_is_left_to_revert_and_never_routed_again():
    kube, now = make(), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    assert kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 5
    kube.rollout["metadata"]["deletionTimestamp"] = "2026-11-22T12:01:00Z"
    assert "removed" in r.revert(copy.deepcopy(kube.rollout))
    r("default", "cancer")                       # the watch event of the finalizer's removal
    assert kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_a_rollout_asking_for_evaluation_fails_until_the_service_has_tag_routing():
    kube, now = make(evaluation={"dataset": {"configMap": "holdout"}, "metric": "accuracy"}), [T0]
    before = copy.deepcopy(kube.isvc)
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Failed" and kube.log[-1] == ("event", "EvaluationNeedsTagRouting")
    assert "serving.kserve.io/enable-tag-routing" in kube.rollout["status"]["message"] and kube.isvc == before
    kube.isvc["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] = "true"
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Evaluating"


def test_the_evaluation_runs_once_kserve_gives_both_versions_an_address_then_traffic_starts():
    kube, now = make(evaluation={"dataset": {"configMap": "holdout"}, "metric": "accuracy"}), [T0]
    kube.isvc["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] = "true"
    asked = []

    def evaluate(spec, namespace, addresses):
        asked.append(addresses)
        return Verdict(PASS, "accuracy on 114 holdout rows: candidate 0.97, stable 0.96", {"candidate": 0.97, "stable": 0.96})
    r = Reconciler(kube, lambda *a: Measurements(HEALTHY, HEALTHY), OperatorMetrics(), evaluate=evaluate,
                   clock=lambda: now[0])
    r("default", "cancer")
    assert kube.log == [("status", "Evaluating", 0), ("event", "EvaluationStarted"), ("isvc", 0, 20)]
    assert kube.isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/cancer/v2"   # deployed, no traffic
    r("default", "cancer")
    assert asked == []                                         # no addresses yet: nothing to evaluate
    kserve_reports(kube, 0)
    for target in kube.isvc["status"]["components"]["predictor"]["traffic"]:
        target["url"] = f"http://{target['tag']}-cancer-predictor.default.svc.cluster.local"
    r("default", "cancer")
    assert asked == [{"candidate": "http://latest-cancer-predictor.default.svc.cluster.local",
                      "stable": "http://prev-cancer-predictor.default.svc.cluster.local"}]
    status = kube.rollout["status"]
    assert status["phase"] == "Progressing" and status["canaryWeight"] == 5 and status["evaluation"]["verdict"] == PASS
    assert kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 5
    assert r.metrics.decisions.labels("Pass")._value.get() == 1
