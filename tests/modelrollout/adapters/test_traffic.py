"""Routers: what each traffic state writes into the InferenceService, per mode (table-driven)."""
import pytest

from modelrollout.adapters.autoscaling import stable_scale
from modelrollout.adapters.traffic import (STORAGE_URI, TAG_ROUTING, ServerlessRouter, StandardRouter, merge_patch,
                                          predictor_name)
from modelrollout.planner import Traffic
from modelrollout.spec import AutoscalingSpec

AUTO = AutoscalingSpec(min_replicas=2, max_replicas=10, metric="cpu", target=70)
STABLE = stable_scale(AUTO)
MODEL = {"modelFormat": {"name": "pytorch"}}
ISVC = {"metadata": {"name": "cancer"}, "spec": {"predictor": {"model": {**MODEL, "storageUri": "s3://m/v1"}}}}
CANARY_25 = Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 25)
ROLLED_BACK = Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0)
CANCELLED = Traffic("v1", "s3://m/v1")
PROMOTED = Traffic("v2", "s3://m/v2")


def apply(router, traffic, isvc=ISVC):
    return merge_patch(isvc, router.patch(isvc, traffic, STABLE))


def template(isvc):
    """What KServe puts in the Knative revision template: everything but the traffic split."""
    return {k: v for k, v in isvc["spec"]["predictor"].items() if k != "canaryTrafficPercent"}


def test_serverless_writes_the_candidate_template_once_with_stable_capacity():
    at_25 = apply(ServerlessRouter(), CANARY_25)
    at_50 = apply(ServerlessRouter(), Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 50), isvc=at_25)
    assert at_25["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert template(at_25) == {"model": {**MODEL, "storageUri": "s3://m/v2"}, **STABLE.fields()}
    assert template(at_50) == template(at_25)            # a step changes only the percentage: no new revision
    assert ServerlessRouter().canary_weight(at_50) == 50


@pytest.mark.parametrize("traffic", [ROLLED_BACK, CANCELLED])
def test_serverless_rollback_and_cancel_pin_stable_and_leave_the_template_byte_identical(traffic):
    """KServe's documented rollback: canaryTrafficPercent 0 with the template unchanged, so the
    revision it last rolled out (stable) takes everything and no new revision is created."""
    at_25 = apply(ServerlessRouter(), CANARY_25)
    back = apply(ServerlessRouter(), traffic, isvc=at_25)
    assert back["spec"]["predictor"]["canaryTrafficPercent"] == 0 and template(back) == template(at_25)
    assert apply(ServerlessRouter(), traffic, isvc=back) == back                      # and stays so


def test_serverless_promotion_removes_the_split_and_keeps_the_template():
    at_50 = apply(ServerlessRouter(), Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 50))
    promoted = apply(ServerlessRouter(), PROMOTED, isvc=at_50)
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"] and template(promoted) == template(at_50)


def test_serverless_next_rollout_after_a_rollback_writes_the_new_candidate():
    pinned = apply(ServerlessRouter(), ROLLED_BACK, isvc=apply(ServerlessRouter(), CANARY_25))
    v3 = apply(ServerlessRouter(), Traffic("v1", "s3://m/v1", "v3", "s3://m/v3", 10), isvc=pinned)
    assert v3["spec"]["predictor"]["canaryTrafficPercent"] == 10 and v3["spec"]["predictor"]["model"]["storageUri"] == "s3://m/v3"


def test_the_evaluation_step_writes_the_candidate_template_at_zero_percent_and_the_first_step_keeps_it():
    evaluating = apply(ServerlessRouter(), Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0, evaluating=True))
    assert evaluating["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert template(evaluating) == {"model": {**MODEL, "storageUri": "s3://m/v2"}, **STABLE.fields()}
    at_25 = apply(ServerlessRouter(), CANARY_25, isvc=evaluating)
    assert template(at_25) == template(evaluating)           # no second revision when traffic starts
    failed = apply(ServerlessRouter(), ROLLED_BACK, isvc=evaluating)
    assert failed == evaluating                              # rejected: stays at 0%, template untouched


def _status(traffic, created="r2"):
    return {"metadata": {"name": "cancer"}, "spec": {"predictor": {"model": {**MODEL, "storageUri": "s3://m/v2"}}},
            "status": {"components": {"predictor": {"latestCreatedRevision": created, "traffic": traffic}}}}


LATEST = {"tag": "latest", "revisionName": "r2", "latestRevision": True, "percent": 0, "url": "http://latest-cancer-predictor.ns.svc.cluster.local"}
PREV = {"tag": "prev", "revisionName": "r1", "latestRevision": False, "percent": 100, "url": "http://prev-cancer-predictor.ns.svc.cluster.local"}
RUNS = {("revision", "r2"): {"metadata": {"annotations": {STORAGE_URI: "s3://m/v2"}}},
        ("revision", "r1"): {"metadata": {"annotations": {STORAGE_URI: "s3://m/v1"}}}}
EVALUATING = Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0, evaluating=True)


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
    isvc = _status(traffic)
    assert set(ServerlessRouter().observe(isvc)) == {("revision", "r2"), ("revision", "r1")}
    urls, why = ServerlessRouter().addresses(isvc, EVALUATING, observed)
    if missing is None:
        assert urls == {"candidate": LATEST["url"], "stable": PREV["url"]} and why == ""
    else:
        assert urls is None and missing in why


CANARY_ENTRY = {"trafficPercent": 25, "predictor": {"name": "v2", "model": {**MODEL, "storageUri": "s3://m/v2"}}}


@pytest.mark.parametrize("traffic,canary", [
    (CANARY_25, CANARY_ENTRY),        # KServe's V1beta1CanarySpec, fixed replicas: no autoscaling fields
    (ROLLED_BACK, None),
    (CANCELLED, None),
])
def test_standard(traffic, canary):
    out = apply(StandardRouter(), traffic)
    assert out["spec"].get("canary") == (None if canary is None else [canary])
    assert out["spec"]["predictor"]["model"] == {**MODEL, "storageUri": traffic.stable_uri}   # stable stays the predictor
    assert out["spec"]["predictor"]["maxReplicas"] == 10 and "name" not in out["spec"]["predictor"]
    assert StandardRouter().canary_weight(out) == (canary or {}).get("trafficPercent", 0)


def test_standard_promotion_hands_the_canary_deployment_to_the_predictor():
    during = apply(StandardRouter(), CANARY_25)
    promoted = apply(StandardRouter(), PROMOTED, isvc=during)
    assert promoted["spec"]["predictor"]["name"] == "v2"       # {isvc}-v2-predictor keeps serving, no restart
    assert promoted["spec"]["predictor"]["model"]["storageUri"] == "s3://m/v2" and "canary" not in promoted["spec"]
    assert apply(StandardRouter(), PROMOTED, isvc=promoted) == promoted                       # and stays so


@pytest.mark.parametrize("isvc,version,name", [
    ("cancer", "v2", "v2"), ("cancer", "V3_Errors", "v3-errors"), ("cancer", "2026.11.1", "v-2026-11-1"),
    ("cancer", "__", "v"), ("x" * 40, "release-candidate-2026", "release-cand"),
])
def test_canary_predictor_names_are_dns_labels_that_start_with_a_letter(isvc, version, name):
    assert predictor_name(isvc, version) == name
    assert len(f"{isvc}-{name}-predictor") <= 63


@pytest.mark.parametrize("router", [ServerlessRouter(), StandardRouter()])
def test_nothing_is_written_into_the_inference_service_annotations(router):
    assert "annotations" not in apply(router, CANARY_25)["metadata"]


def test_serving_reads_the_version_label_else_the_uri():
    assert ServerlessRouter().serving(ISVC) == ("v1", "s3://m/v1")
    labelled = {**ISVC, "metadata": {"name": "cancer", "labels": {"serving.modelrollout.io/version": "1.0"}}}
    assert ServerlessRouter().serving(labelled) == ("1.0", "s3://m/v1")


@pytest.mark.parametrize("target,patch,expected", [
    ({"a": 1}, {"a": None}, {}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),
])
def test_merge_patch_is_rfc_7386(target, patch, expected):
    assert merge_patch(target, patch) == expected
