"""ModelRollout objects in every phase, as the operator's own Reconciler leaves them (the
in-memory Kubernetes of the reconciler's tests): what the GitOps checks (Argo CD's Lua, kstatus)
are run on."""
import copy
import dataclasses
import datetime as dt

from modelrollout.analysis import Measurements
from tests.modelrollout.test_reconcile import HEALTHY, T0, kserve_reports, make, reconciler


def _promoted(verified: bool = False) -> dict:
    kube, clock = make(), [T0]
    r, _ = reconciler(kube, clock)
    r("default", "cancer")
    kserve_reports(kube, 5)
    kube.rollout["spec"]["promote"] = "v2"
    kube.rollout["metadata"]["generation"] += 1
    r("default", "cancer")
    if verified:                       # KServe routes v2 alone: the reconciler sees it and says so
        kube.revisions["cancer-predictor-00002"] = "pvc://models/cancer/v2"
        kube.isvc["status"]["components"]["predictor"].update(
            latestRolledoutRevision="cancer-predictor-00002",
            traffic=[{"revisionName": "cancer-predictor-00002", "latestRevision": True, "percent": 100}])
        clock[0] += dt.timedelta(seconds=5)
        r("default", "cancer")
    return copy.deepcopy(kube.rollout)


def phases() -> dict[str, dict]:
    """One ModelRollout per phase (and the promoted ones before and after KServe routes them alone)."""
    out, clock = {}, [T0]
    kube = make()
    r, _ = reconciler(kube, clock)
    r("default", "cancer")
    out["Progressing"] = copy.deepcopy(kube.rollout)
    kube.rollout["spec"]["paused"] = True
    kube.rollout["metadata"]["generation"] += 1
    r("default", "cancer")
    out["Paused"] = copy.deepcopy(kube.rollout)
    kube.rollout["spec"]["paused"] = False
    kube.rollout["spec"]["abort"] = True
    kube.rollout["metadata"]["generation"] += 1
    r("default", "cancer")
    out["RolledBack"] = copy.deepcopy(kube.rollout)
    out["Promoted"] = _promoted()
    out["Promoted, routed alone"] = _promoted(verified=True)
    broken = make()
    broken.rollout["spec"]["strategy"]["steps"] = [{"weight": 50}]
    r, _ = reconciler(broken, clock)
    r("default", "cancer")
    out["Failed"] = copy.deepcopy(broken.rollout)
    idle = make()
    idle.rollout["spec"]["model"] = {"version": "v1", "storageUri": "pvc://models/cancer/v1"}
    r, _ = reconciler(idle, clock)
    r("default", "cancer")
    out["Idle"] = copy.deepcopy(idle.rollout)
    waiting = make()
    del waiting.isvc["status"]["components"]["predictor"]["latestRolledoutRevision"]
    r, _ = reconciler(waiting, clock)
    r("default", "cancer")
    out["Waiting"] = copy.deepcopy(waiting.rollout)
    evaluating = make(evaluation={"dataset": {"configMap": "holdout"}, "metric": "accuracy"})
    evaluating.isvc["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] = "true"
    r, _ = reconciler(evaluating, clock)
    r("default", "cancer")
    out["Evaluating"] = copy.deepcopy(evaluating.rollout)
    shadowing = make()
    shadowing.rollout["spec"]["strategy"]["shadow"] = {"fraction": 0.1}
    shadowing.isvc["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] = "true"
    r, _ = reconciler(shadowing, clock)
    r("default", "cancer")
    out["Shadowing"] = copy.deepcopy(shadowing.rollout)
    holding, at = make(), [T0]
    r, _ = reconciler(holding, at, Measurements(dataclasses.replace(HEALTHY, requests=3), HEALTHY))   # too few
    r("default", "cancer")
    kserve_reports(holding, 5)
    r("default", "cancer")
    at[0] = T0 + dt.timedelta(minutes=3)
    r("default", "cancer")
    out["Holding"] = copy.deepcopy(holding.rollout)
    return out


PHASES = phases()


def phase_of(name: str) -> str:
    return name.split(",")[0]
