"""The serverless router: what each traffic state writes into the InferenceService, chosen by the
storageUri of the revisions KServe's status names (table-driven)."""
import pytest

from modelrollout.adapters.autoscaling import stable_scale
from modelrollout.adapters.isvc import TAG_ROUTING, merge_patch
from modelrollout.builds import STORAGE_URI, Build
from modelrollout.adapters.serverless import ServerlessRouter
from modelrollout.planner import Traffic
from modelrollout.spec import AutoscalingSpec

V1, V2, V3 = "s3://m/v1", "s3://m/v2", "s3://m/v3"
STABLE = stable_scale(AutoscalingSpec(min_replicas=2, max_replicas=10, metric="concurrency", target=8))
MODEL = {"modelFormat": {"name": "pytorch"}}
CANARY_25 = Traffic("v1", V1, "v2", V2, 25)
ROLLED_BACK = Traffic("v1", V1, "v2", V2, 0)
CANCELLED = Traffic("v1", V1)
PROMOTED = Traffic("v2", V2)
EVALUATING = Traffic("v1", V1, "v2", V2, 0, evaluating=True)
ROUTER = ServerlessRouter()


def kserve(template=V1, canary=None, created="r1", ready="r1", rolled_out="r1", runs=None, traffic=None):
    """An InferenceService as KServe reports it, and the revisions it names with the model each runs."""
    runs = {"r1": V1, "r2": V2, "r3": V3} if runs is None else runs
    predictor = {"model": {**MODEL, "storageUri": template}, **({} if canary is None else {"canaryTrafficPercent": canary})}
    status = {"latestCreatedRevision": created, "latestReadyRevision": ready, "latestRolledoutRevision": rolled_out,
              "traffic": traffic or []}
    isvc = {"metadata": {"name": "cancer"}, "spec": {"predictor": predictor}, "status": {"components": {"predictor": status}}}
    observed = {("revision", name): {"metadata": {"name": name, "annotations": {STORAGE_URI: uri}}} for name, uri in runs.items()}
    return isvc, observed


def apply(traffic, state):
    isvc, observed = state
    return merge_patch(isvc, ROUTER.patch(isvc, traffic, STABLE, observed))


def predictor(isvc):
    return isvc["spec"]["predictor"]


def template(isvc):
    """What KServe puts in the Knative revision template: everything but the traffic split."""
    return {k: v for k, v in predictor(isvc).items() if k != "canaryTrafficPercent"}


CANDIDATE = {"model": {**MODEL, "storageUri": V2}, **STABLE.fields()}
ALONE_V1 = {"model": {**MODEL, "storageUri": V1}, **STABLE.fields()}


@pytest.mark.parametrize("traffic, state, expected", [
    # a step: the candidate's template with stable's capacity, its weight once the latest ready revision runs it
    (CANARY_25, kserve(template=V2, canary=10, created="r2", ready="r2"), {**CANDIDATE, "canaryTrafficPercent": 25}),
    (CANARY_25, kserve(), {**CANDIDATE, "canaryTrafficPercent": 0}),                  # its revision not ready yet
    (CANARY_25, kserve(template=V3, canary=0, created="r3", ready="r3"),              # ready: a rejected v3 at 0%
     {**CANDIDATE, "canaryTrafficPercent": 0}),
    (CANARY_25, kserve(template=V2, canary=10, created="r2", ready="r2", rolled_out="r2"),   # the rest would go to v2
     {"model": {**MODEL, "storageUri": V2}, "canaryTrafficPercent": 10}),
    (EVALUATING, kserve(), {**CANDIDATE, "canaryTrafficPercent": 0}),
    # back to stable: KServe's rollback while the rolled-out revision runs stable, template untouched
    (ROLLED_BACK, kserve(template=V2, canary=25, created="r2", ready="r2"), {"model": {**MODEL, "storageUri": V2},
                                                                             "canaryTrafficPercent": 0}),
    (CANCELLED, kserve(template=V2, canary=25, created="r2", ready="r2"), {"model": {**MODEL, "storageUri": V2},
                                                                           "canaryTrafficPercent": 0}),
    # the candidate became "rolled out" (canaryTrafficPercent set to 100 by hand): stable's template makes a revision
    (ROLLED_BACK, kserve(template=V2, canary=100, created="r2", ready="r2", rolled_out="r2"), ALONE_V1),
    # stable's template re-applied mid-rollout, its revision not ready: pinned to the rolled-out stable meanwhile
    (ROLLED_BACK, kserve(template=V1, canary=50, created="r3", ready="r2", runs={"r1": V1, "r2": V2, "r3": V1}),
     {"model": {**MODEL, "storageUri": V1}, "canaryTrafficPercent": 0}),
    # ... and once it is ready, it takes all
    (ROLLED_BACK, kserve(template=V1, canary=0, created="r3", ready="r3", runs={"r1": V1, "r2": V2, "r3": V1}), ALONE_V1),
    # promotion: the candidate's ready revision takes all, template unchanged
    (PROMOTED, kserve(template=V2, canary=50, created="r2", ready="r2"), CANDIDATE),
    (CANCELLED, kserve(), ALONE_V1),                                                   # idle
])
def test_what_each_traffic_writes_follows_what_the_revisions_run(traffic, state, expected):
    assert predictor(apply(traffic, state)) == expected


def test_a_step_changes_only_the_percentage_so_no_revision_is_created_mid_rollout():
    at_25 = apply(CANARY_25, kserve(template=V2, canary=0, created="r2", ready="r2"))
    at_50 = apply(Traffic("v1", V1, "v2", V2, 50), (at_25, kserve()[1]))
    assert template(at_50) == template(at_25) == CANDIDATE
    assert ROUTER.canary_weight(at_50) == 50


@pytest.mark.parametrize("traffic", [ROLLED_BACK, CANCELLED])
def test_rollback_and_cancel_leave_the_template_byte_identical_and_stay_so(traffic):
    at_25 = kserve(template=V2, canary=25, created="r2", ready="r2")
    back = apply(traffic, at_25)
    assert predictor(back)["canaryTrafficPercent"] == 0 and template(back) == template(at_25[0])
    assert apply(traffic, (back, at_25[1])) == back


def test_the_evaluation_template_is_the_first_steps_and_a_rejected_candidate_stays_at_zero():
    evaluating = apply(EVALUATING, kserve())
    at_25 = apply(CANARY_25, (evaluating, kserve()[1]))
    assert template(at_25) == template(evaluating) == CANDIDATE        # no second revision when traffic starts
    rejected = (evaluating, kserve(created="r2", ready="r2")[1])
    assert apply(ROLLED_BACK, rejected) == evaluating


@pytest.mark.parametrize("rolled_out, runs, blocked", [
    ("r1", None, None),
    ("r2", None, "revision r2 (latestRolledoutRevision), which runs s3://m/v2, not stable's s3://m/v1"),
    ("r9", None, "revision r9 (latestRolledoutRevision), which runs a model it does not name"),
])
def test_a_canary_is_blocked_while_kserve_would_send_the_rest_to_a_revision_not_running_stable(rolled_out, runs, blocked):
    isvc, observed = kserve(rolled_out=rolled_out, runs=runs)
    found = ROUTER.blocked(isvc, Build(V1), observed)
    assert (found is None) if blocked is None else blocked in found


def test_it_observes_every_revision_kserve_names():
    isvc, _ = kserve(created="r3", ready="r2", rolled_out="r1", traffic=[{"revisionName": "r4", "percent": 10}])
    assert ROUTER.observe(isvc) == [("revision", "r3"), ("revision", "r2"), ("revision", "r1"), ("revision", "r4")]


LATEST = {"tag": "latest", "revisionName": "r2", "latestRevision": True, "percent": 0, "url": "http://latest-cancer-predictor.ns.svc.cluster.local"}
PREV = {"tag": "prev", "revisionName": "r1", "latestRevision": False, "percent": 100, "url": "http://prev-cancer-predictor.ns.svc.cluster.local"}
RUNS = {("revision", "r2"): {"metadata": {"annotations": {STORAGE_URI: V2}}},
        ("revision", "r1"): {"metadata": {"annotations": {STORAGE_URI: V1}}}}


@pytest.mark.parametrize("traffic, observed, missing", [
    ([LATEST, PREV], RUNS, None),
    ([{**LATEST, "tag": None, "url": None}, PREV], RUNS, TAG_ROUTING),
    ([{**LATEST, "revisionName": "r1"}, PREV], RUNS, "revision r2 is not ready"),     # Knative keeps the tag on the last ready one
    ([LATEST, PREV], {**RUNS, ("revision", "r2"): None}, "does not run s3://m/v2"),
    ([LATEST, {**PREV, "url": None}], RUNS, "tag prev"),
    ([LATEST, PREV], {**RUNS, ("revision", "r1"): {"metadata": {"annotations": {STORAGE_URI: "s3://m/v0"}}}},
     "does not run s3://m/v1"),
])
def test_the_evaluation_addresses_are_the_tagged_urls_once_each_runs_its_version(traffic, observed, missing):
    isvc, _ = kserve(template=V2, canary=0, created="r2", ready="r1", traffic=traffic)
    urls, why = ROUTER.addresses(isvc, EVALUATING, observed)
    if missing is None:
        assert urls == {"candidate": LATEST["url"], "stable": PREV["url"]} and why == ""
    else:
        assert urls is None and missing in why


def test_nothing_is_written_into_the_inference_service_annotations():
    assert "annotations" not in apply(CANARY_25, kserve())["metadata"]


def test_serving_reads_the_version_label_else_the_uri():
    isvc, _ = kserve()
    assert ROUTER.serving(isvc) == ("v1", V1)
    isvc["metadata"]["labels"] = {"serving.modelrollout.io/version": "1.0"}
    assert ROUTER.serving(isvc) == ("1.0", V1)


@pytest.mark.parametrize("state, expected", [
    (kserve(template=V2, canary=25, created="r2", ready="r2"), {V2: 25, V1: 75}),
    (kserve(template=V2, canary=0, created="r2", ready="r2", rolled_out="r2"), {V2: 100}),   # 0%: all to "rolled out"
    (kserve(template=V2, created="r2", ready="r2"), {V2: 100}),                              # no field: latest ready
    (kserve(template=V2, canary=25, created="r2", ready="r9"), None),                        # a revision not known
])
def test_the_next_split_is_what_kserves_bookkeeping_routes(state, expected):
    split = ROUTER.next_split(*state)
    assert (split if split is None else {b.storage_uri: p for b, p in split}) == expected
