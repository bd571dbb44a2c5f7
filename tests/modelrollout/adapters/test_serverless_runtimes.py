"""The serverless router when a rollout changes the runtime rather than (or as well as) the model:
revisions of one storageUri told apart by their image and resources (builds.py)."""
from modelrollout.adapters.autoscaling import stable_scale
from modelrollout.adapters.isvc import all_to, merge_patch, served
from modelrollout.adapters.serverless import ServerlessRouter
from modelrollout.builds import STORAGE_URI, Runtime, candidate, of_revision, overlay, retag
from modelrollout.planner import Traffic

V1 = "s3://m/v1"
IMAGE, NEW = "kind.local/predictor:0.4.0", "kind.local/predictor:0.5.0"
POD = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
STABLE = Runtime(None, POD, IMAGE, POD)
RETAGGED = candidate(STABLE, "0.5.0", None)
ROUTER, NO_SCALE = ServerlessRouter(), stable_scale(None)
CANARY_25 = Traffic("v1", V1, "v1-rt", V1, 25, stable_runtime=STABLE, canary_runtime=RETAGGED)
BACK = Traffic("v1", V1, "v1-rt", V1, 0, stable_runtime=STABLE, canary_runtime=RETAGGED)


def revision(name, image, resources=POD):
    return {"metadata": {"name": name, "annotations": {STORAGE_URI: V1}},
            "spec": {"containers": [{"name": "kserve-container", "image": image, "resources": resources}]}}


def kserve(runtime_version=None, canary=None, created="r1", ready="r1", rolled_out="r1", traffic=None, resources=POD):
    model = {"modelFormat": {"name": "pytorch"}, "storageUri": V1, "resources": resources,
             **({"runtimeVersion": runtime_version} if runtime_version else {})}
    predictor = {"model": model, **({} if canary is None else {"canaryTrafficPercent": canary})}
    status = {"latestCreatedRevision": created, "latestReadyRevision": ready, "latestRolledoutRevision": rolled_out,
              "traffic": traffic or [{"revisionName": ready, "percent": 100, "latestRevision": True}]}
    isvc = {"metadata": {"name": "cancer"}, "spec": {"predictor": predictor}, "status": {"components": {"predictor": status}}}
    observed = {("revision", "r1"): revision("r1", IMAGE), ("revision", "r2"): revision("r2", NEW)}
    return isvc, observed


def apply(traffic, state):
    isvc, observed = state
    return merge_patch(isvc, ROUTER.patch(isvc, traffic, NO_SCALE, observed))


def test_the_candidate_writes_its_runtime_version_and_takes_no_share_while_only_stables_image_is_ready():
    written = apply(CANARY_25, kserve())
    assert written["spec"]["predictor"]["model"]["runtimeVersion"] == "0.5.0"
    assert written["spec"]["predictor"]["canaryTrafficPercent"] == 0          # r1 runs stable's image, not the candidate's
    pending = ROUTER.pending(written, CANARY_25, kserve()[1])
    assert pending is not None


def test_its_share_is_served_once_the_latest_revision_runs_the_retagged_image():
    traffic = [{"revisionName": "r2", "percent": 25, "latestRevision": True}, {"revisionName": "r1", "percent": 75}]
    state = kserve("0.5.0", canary=25, created="r2", ready="r2", traffic=traffic)
    assert apply(CANARY_25, state)["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert ROUTER.pending(state[0], CANARY_25, state[1]) is None


def test_a_revision_of_stables_model_on_the_candidates_image_rolled_out_blocks_a_canary():
    isvc, observed = kserve("0.5.0", created="r2", ready="r2", rolled_out="r2")
    assert "runs s3://m/v1 on kind.local/predictor:0.5.0" in ROUTER.blocked(isvc, CANARY_25.stable_build, observed)
    assert ROUTER.blocked(*kserve()[:1], CANARY_25.stable_build, kserve()[1]) is None


def test_going_back_removes_the_runtime_version_once_stables_revision_is_not_where_kserve_routes():
    # the candidate was made "rolled out" by hand: stable's template (no runtimeVersion) makes a new revision
    state = kserve("0.5.0", canary=100, created="r2", ready="r2", rolled_out="r2")
    model = apply(BACK, state)["spec"]["predictor"]["model"]
    assert "runtimeVersion" not in model and model["storageUri"] == V1


def test_the_serving_check_tells_stables_revision_from_the_candidates_of_one_uri():
    isvc, observed = kserve("0.5.0", canary=0, created="r2", ready="r2",
                            traffic=[{"revisionName": "r2", "percent": 100, "latestRevision": True}])
    runs = {name: obj for (_, name), obj in observed.items()}
    assert not all_to(served(isvc, runs), BACK.stable_build)                   # all to r2, the candidate's image
    isvc, _ = kserve("0.5.0", canary=0, created="r2", ready="r2", traffic=[{"revisionName": "r1", "percent": 100}])
    assert all_to(served(isvc, runs), BACK.stable_build)


def test_stables_runtime_is_the_template_with_what_the_rolled_out_revision_runs():
    isvc, observed = kserve()
    assert ROUTER.stable_runtime(isvc, observed) == Runtime(None, POD, IMAGE, POD)


def test_a_resources_change_is_written_over_stables_and_its_revision_told_apart():
    more = candidate(STABLE, None, {"limits": {"memory": "4Gi"}})
    traffic = Traffic("v1", V1, "v1-big", V1, 25, stable_runtime=STABLE, canary_runtime=more)
    written = apply(traffic, kserve())["spec"]["predictor"]["model"]["resources"]
    assert written == overlay(POD, {"limits": {"memory": "4Gi"}})
    assert not traffic.canary_build.matches(of_revision(revision("r1", IMAGE)))
    assert traffic.canary_build.matches(of_revision(revision("r3", IMAGE, overlay(POD, {"limits": {"memory": "4096Mi"}}))))
    assert retag(IMAGE, "0.5.0") == NEW
