"""The reconciler's sequencing, with an in-memory Kubernetes adapter and measurements passed in."""
import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from modelrollout.adapters.kube import ConfigMapError, Conflict, NotFound, RoutingError
from modelrollout.adapters.isvc import merge_patch
from modelrollout.analysis import PASS, Measurements, Scrape, Verdict, VersionSample
from modelrollout.metrics import OperatorMetrics
from modelrollout.schedule import POLL_APPLIED
from modelrollout.reconcile import Reconciler

EXAMPLE = Path(__file__).resolve().parents[2] / "crds/examples/cancer-serverless.yaml"
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
V2 = "pvc://models/cancer/v2"
HEALTHY = VersionSample(1000, 1, ((0.01, 990), (0.1, 1000), (float("inf"), 1000)))


class MemoryKube:
    def __init__(self, rollout: dict, isvc: dict | None):
        self.rollout, self.isvc, self.log, self.conflict, self.refuse = rollout, isvc, [], False, None
        self.stop_after_patch = False             # the operator stops between a patch and its status write
        # the test's input: which model each Knative revision runs
        self.revisions: dict[str, str] = {"cancer-predictor-00001": "pvc://models/cancer/v1"}
        self.config_maps: dict[tuple[str, str], dict[str, str]] = {}
        self.refuse_config_maps: str | None = None

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
        before, self.isvc = self.isvc, merge_patch(self.isvc, patch)
        if self.isvc["spec"] != before["spec"]:        # the apiserver counts spec changes
            self.isvc["metadata"]["generation"] = before["metadata"].get("generation", 1) + 1
        pred = self.isvc["spec"]["predictor"]
        self.log.append(("isvc", pred.get("canaryTrafficPercent"), pred.get("maxReplicas")))
        self.conflict = self.stop_after_patch
        return copy.deepcopy(self.isvc)

    def get_revision(self, namespace, name):
        if name not in self.revisions:
            raise NotFound(name)
        return {"metadata": {"name": name, "annotations": {
            "internal.serving.kserve.io/storage-initializer-sourceuri": self.revisions[name]}}}

    def set_config_map_key(self, namespace, name, key, value):
        if self.refuse_config_maps:
            raise ConfigMapError(self.refuse_config_maps)
        data = self.config_maps.setdefault((namespace, name), {})
        data.pop(key, None) if value is None else data.update({key: value})
        self.log.append(("configmap", key, value is not None))

    def emit(self, rollout, event):
        self.log.append(("event", event.reason))


def make(isvc=True, **spec_changes):
    obj = yaml.safe_load(EXAMPLE.read_text())
    obj["spec"].update(spec_changes)
    obj["metadata"].update(namespace="default", generation=1, resourceVersion="1")
    return MemoryKube(obj, rolled_out() if isvc else None)


def rolled_out() -> dict:
    """An InferenceService whose first revision KServe has rolled out (it serves v1)."""
    first = "cancer-predictor-00001"
    return {"metadata": {"name": "cancer", "generation": 1, "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
            "spec": {"predictor": {"model": {"storageUri": "pvc://models/cancer/v1"}}},
            "status": {"components": {"predictor": {"latestCreatedRevision": first, "latestReadyRevision": first,
                                                    "latestRolledoutRevision": first}}}}


def reconciler(kube, clock, measured=None):
    calls = []

    def measure(spec, canary, stable, window, namespace, revisions):
        calls.append((spec.model_name, canary, stable, window))
        assert namespace == "default"
        return measured or Measurements(HEALTHY, HEALTHY)
    r = Reconciler(kube, measure, OperatorMetrics(), clock=lambda: clock[0])
    return r, calls


def test_start_writes_status_then_the_candidate_at_zero_until_its_revision_is_ready_then_the_weight():
    """Until the candidate's revision is ready Knative sends the latest revision's share to the last
    ready one, which may be an earlier, rejected candidate: the weight waits for the candidate's."""
    kube, now = make(), [T0]
    r, calls = reconciler(kube, now)
    requeue = r("default", "cancer")
    assert kube.log == [("status", "Progressing", 5), ("event", "RolloutStarted"), ("isvc", 0, 20),
                        ("status", "Progressing", 5)]            # the generation the patch left, recorded
    assert requeue == POLL_APPLIED and calls == []             # looks again for KServe to serve 5%
    assert kube.rollout["status"]["observedGeneration"] == 1
    assert (kube.rollout["status"]["isvcGeneration"], kube.isvc["metadata"]["generation"]) == (2, 2)
    kserve_reports(kube, 0)                                    # the candidate's revision is ready at 0%
    r("default", "cancer")
    assert kube.log[-2:] == [("isvc", 5, 20), ("status", "Progressing", 5)]


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
        "latestCreatedRevision": "cancer-predictor-00002", "latestReadyRevision": "cancer-predictor-00002",
        "latestRolledoutRevision": "cancer-predictor-00001",
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
    window = calls[0][3]
    assert calls == [("cancer", "v2", "v1", window)] and window.end - window.start == 60   # the spec's 1m window
    assert window.since == (T0 + dt.timedelta(minutes=5)).timestamp()                     # the step served from then
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
        "Ready": "False", "Progressing": "True", "Paused": "False", "Degraded": "False", "Reconciling": "True", "Stalled": "False"}
    kube.isvc["status"] = {"components": {"predictor": {"latestCreatedRevision": "cancer-predictor-00001"}}}
    r("default", "cancer")                                     # created, not yet rolled out: still waiting
    assert all(e[0] != "isvc" for e in kube.log)
    kube.isvc = rolled_out()
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Progressing" and kube.log[-2] == ("isvc", 0, 20)


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
    assert kube.log[-1] == ("event", "RoutingRestored") and kube.isvc["spec"]["predictor"]["model"]["storageUri"] == V2
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
        assert status["phase"] == "Failed" and status["resumePhase"] == "RolledBack"   # never claims RolledBack
        assert kube.log[-1] == ("event", "ServingMismatch")
        # no revision KServe routes to runs stable, so stable's template was written for one to be made
        assert kube.isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/cancer/v1"
        assert "canaryTrafficPercent" not in kube.isvc["spec"]["predictor"]
        r("default", "cancer")
        assert kube.log.count(("event", "ServingMismatch")) == 1          # announced once, not every look
        kube.revisions["cancer-predictor-00003"] = "pvc://models/cancer/v1"   # KServe catches up
        kube.isvc["status"]["components"]["predictor"].update(
            latestCreatedRevision="cancer-predictor-00003", latestReadyRevision="cancer-predictor-00003",
            traffic=[{"revisionName": "cancer-predictor-00003", "latestRevision": True, "percent": 100}])
        r("default", "cancer")
        status = kube.rollout["status"]
        assert (status["phase"], status["servingVerified"], kube.log[-1]) == ("RolledBack", True, ("event", "ServingRestored"))


def test_stable_alone_in_kserve_status_is_not_verified_while_its_bookkeeping_routes_the_candidate_next():
    """Seen on the real KServe after a hand edit to 100%: its status showed the rolled-back split
    (everything to v1's revision) built from a stale read, while it had recorded the candidate's
    revision as rolled out, and its next reconcile sent the candidate everything."""
    kube, now = make(abort=True), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    kube.rollout["status"].update(phase="RolledBack", canaryVersion="v2", canaryStorageUri="pvc://models/cancer/v2")
    kube.isvc["spec"]["predictor"].update(canaryTrafficPercent=0, model={"storageUri": "pvc://models/cancer/v2"})
    kserve_reports(kube, 0)                                   # prev (v1's revision) takes 100%...
    kube.isvc["status"]["components"]["predictor"]["latestRolledoutRevision"] = "cancer-predictor-00002"  # ...for now
    r("default", "cancer")
    assert not kube.rollout["status"].get("servingVerified")
    assert kube.isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/cancer/v1"   # a revision of stable's


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
    kserve_reports(kube, 0)
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
    assert kube.log == [("status", "Evaluating", 0), ("event", "EvaluationStarted"), ("isvc", 0, 20),
                        ("status", "Evaluating", 0)]
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


def served_at(kube, reconcile, clock, weight):
    """The rollout's step is served: KServe reports the candidate ready, then at its weight."""
    kserve_reports(kube, 0)
    reconcile("default", "cancer")
    kserve_reports(kube, weight)
    clock[0] += dt.timedelta(seconds=5)
    reconcile("default", "cancer")
    assert kube.rollout["status"]["stepStartedAt"]


def replaced_by_someone(kube, predictor):
    """Someone else's write of the InferenceService's spec (the apiserver raises its generation)."""
    kube.isvc["spec"]["predictor"] = predictor
    kube.isvc["metadata"]["generation"] += 1
    kube.isvc["metadata"]["managedFields"] = [{"manager": "kubectl-replace", "operation": "Update",
                                               "time": "2026-11-22T12:03:00Z", "fieldsV1": {"f:spec": {}}}]


def test_an_inference_service_changed_by_someone_else_mid_rollout_rolls_back_to_a_revision_running_stable():
    kube, now = make(), [T0]
    r, calls = reconciler(kube, now)
    r("default", "cancer")
    served_at(kube, r, now, 5)
    replaced_by_someone(kube, {"model": {"storageUri": "pvc://models/cancer/v1"}, "canaryTrafficPercent": 5})
    now[0] += dt.timedelta(minutes=5)                          # past the hold: the analysis would be due
    r("default", "cancer")
    status = kube.rollout["status"]
    assert status["phase"] == "RolledBack" and "changed by kubectl-replace" in status["message"] and calls == []
    assert [e for e in kube.log if e[0] == "event"][-2:] == [("event", "ExternalChange"), ("event", "RolledBack")]
    # the rolled-out revision runs stable: KServe sends it everything, whatever the re-applied template makes
    assert kube.isvc["spec"]["predictor"] == {"model": {"storageUri": "pvc://models/cancer/v1"}, "canaryTrafficPercent": 0}
    assert status["isvcGeneration"] == kube.isvc["metadata"]["generation"]


def test_a_patch_whose_record_was_lost_when_the_operator_stopped_is_still_its_own():
    kube, now = make(), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    kserve_reports(kube, 0)
    kube.stop_after_patch = True
    with pytest.raises(Conflict):
        r("default", "cancer")                                 # patched to 5%, then stopped before recording it
    kube.conflict = kube.stop_after_patch = False
    status = kube.rollout["status"]
    assert status["isvcPatching"] and status["isvcGeneration"] + 1 == kube.isvc["metadata"]["generation"]
    kserve_reports(kube, 5)
    r("default", "cancer")
    status = kube.rollout["status"]
    assert status["phase"] == "Progressing" and status["stepStartedAt"] and not status.get("isvcPatching")
    assert status["isvcGeneration"] == kube.isvc["metadata"]["generation"]


def test_a_candidate_made_rolled_out_by_someone_else_is_never_written_again_and_stable_is_restored():
    kube, now = make(), [T0]
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    served_at(kube, r, now, 5)
    # canaryTrafficPercent set to 100 by hand: KServe made the candidate's revision the rolled-out one
    replaced_by_someone(kube, {**kube.isvc["spec"]["predictor"], "canaryTrafficPercent": 100})
    kube.isvc["status"]["components"]["predictor"].update(latestRolledoutRevision="cancer-predictor-00002", traffic=[
        {"revisionName": "cancer-predictor-00002", "latestRevision": True, "percent": 100}])
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "RolledBack"
    # canaryTrafficPercent 0 would send everything to the rolled-out candidate: stable's template instead
    assert kube.isvc["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/cancer/v1"
    assert "canaryTrafficPercent" not in kube.isvc["spec"]["predictor"]


def test_a_rollout_waits_while_kserve_has_not_rolled_out_stable_and_never_writes_a_canary_meanwhile():
    kube, now = make(), [T0]
    kube.revisions["cancer-predictor-00001"] = "pvc://models/cancer/v0"     # the template changed, not yet rolled out
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    status = kube.rollout["status"]
    assert status["phase"] == "Waiting" and "runs pvc://models/cancer/v0" in status["message"]
    assert [e for e in kube.log if e[0] == "event"] == [("event", "StableNotRolledOut")]
    assert all(e[0] != "isvc" or e[1] is None for e in kube.log)          # no canary written
    kube.revisions["cancer-predictor-00001"] = "pvc://models/cancer/v1"
    r("default", "cancer")
    assert kube.rollout["status"]["phase"] == "Progressing" and kube.isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0


def own_autoscaling(kube: MemoryKube) -> dict:
    kube.isvc["spec"]["predictor"].update(minReplicas=2, maxReplicas=6, scaleMetric="rps", scaleTarget=30)
    del kube.rollout["spec"]["autoscaling"]
    return {k: kube.isvc["spec"]["predictor"][k] for k in ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")}


@pytest.mark.parametrize("version, uri", [("v1", "pvc://models/cancer/v1"), ("v2", V2)])
def test_without_spec_autoscaling_the_inference_services_own_autoscaling_is_left_alone(version, uri):
    """Nothing to roll out (v1 is served) or a candidate: no patch writes min/max replicas or the
    scale metric when the rollout names none."""
    kube, now = make(), [T0]
    kube.rollout["spec"]["model"].update(version=version, storageUri=uri)
    own = own_autoscaling(kube)
    r, _ = reconciler(kube, now)
    r("default", "cancer")
    kserve_reports(kube, 0)
    r("default", "cancer")
    predictor = kube.isvc["spec"]["predictor"]
    assert {k: predictor.get(k) for k in own} == own


def test_each_look_names_the_knative_revisions_that_run_each_version():
    """For providers that tell versions apart by revision (knative), from the revisions KServe names."""
    kube, now = make(), [T0]
    seen = []

    def measure(spec, canary, stable, window, namespace, revisions):
        seen.append(revisions)
        return Measurements(HEALTHY, HEALTHY)
    r = Reconciler(kube, measure, OperatorMetrics(), clock=lambda: now[0])
    r("default", "cancer")
    kserve_reports(kube, 5)
    r("default", "cancer")
    now[0] = T0 + dt.timedelta(seconds=130)
    r("default", "cancer")
    assert seen == [{"v2": ("cancer-predictor-00002",), "v1": ("cancer-predictor-00001",)}]


def test_with_a_guardrail_a_canary_failing_most_requests_rolls_back_during_the_hold():
    """The guard reads the canary alone (stable None) since the step started, each resync."""
    kube, now = make(), [T0]
    kube.rollout["spec"]["analysis"]["guardrail"] = {"maxErrorRate": 0.2}
    seen = []

    def measure(spec, canary, stable, window, namespace, revisions):
        seen.append((stable, window.since == window.start))
        return Measurements(VersionSample(300, 200, (), scrapes=(Scrape(100, 67), Scrape(100, 66), Scrape(100, 67))), None)
    r = Reconciler(kube, measure, OperatorMetrics(), clock=lambda: now[0])
    r("default", "cancer")
    kserve_reports(kube, 5)
    r("default", "cancer")                                   # the step is served: its hold starts
    now[0] = T0 + dt.timedelta(seconds=40)                   # within the example's 2m hold
    r("default", "cancer")
    assert seen == [(None, True)]
    assert kube.rollout["status"]["phase"] == "RolledBack" and "guardrail" in kube.rollout["status"]["message"]
    assert ("event", "GuardrailFailed") in kube.log


def test_the_rule_that_fired_is_logged_with_the_transition(caplog):
    kube, now = make(), [T0]
    r, _ = reconciler(kube, now)
    with caplog.at_level("DEBUG", logger="modelrollout.reconcile"):
        r("default", "cancer")                       # a new candidate: the planner's "start"
        r("default", "cancer")                       # KServe has not served 5% yet: nothing fires
    lines = [rec for rec in caplog.records if rec.name == "modelrollout.reconcile"]
    assert lines[0].levelname == "INFO" and lines[0].getMessage() == \
        "default/cancer: rule 'start': Idle -> Progressing; RolloutStarted"
    assert lines[-1].levelname == "DEBUG" and "Progressing -> Progressing" in lines[-1].getMessage()
