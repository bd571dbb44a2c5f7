"""Routers: what each traffic state writes into the InferenceService, per mode (table-driven)."""
import pytest

from modelrollout.adapters.autoscaling import Scale, canary_scale, stable_scale
from modelrollout.adapters.traffic import (CANARY_VERSION, STABLE_VERSION, ServerlessRouter, StandardRouter,
                                           merge_patch, predictor_name)
from modelrollout.planner import Traffic
from modelrollout.spec import AutoscalingSpec

AUTO = AutoscalingSpec(min_replicas=2, max_replicas=10, metric="cpu", target=70)
STABLE = stable_scale(AUTO)
ISVC = {"metadata": {"name": "cancer"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "pytorch"}, "storageUri": "s3://m/v1"}}}}
CANARY_25 = Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 25)
ROLLED_BACK = Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0)
IDLE = Traffic("v2", "s3://m/v2")


def apply(router, traffic, warm=False, isvc=ISVC):
    return merge_patch(isvc, router.patch(isvc, traffic, STABLE, canary_scale(AUTO, traffic.canary_weight) or
                                          (canary_scale(AUTO, 25) if warm else None), warm=warm))


@pytest.mark.parametrize("traffic,warm,uri,percent,max_replicas", [
    (CANARY_25, False, "s3://m/v2", 25, 3),        # latest revision = canary, at its share of capacity
    (ROLLED_BACK, False, "s3://m/v1", 0, 10),      # the rolled-out revision keeps all traffic
    (IDLE, False, "s3://m/v2", None, 10),          # promoted: no canary field at all
    (Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0), True, "s3://m/v2", 0, 3),  # warming: deployed at 0%
])
def test_serverless(traffic, warm, uri, percent, max_replicas):
    out = apply(ServerlessRouter(), traffic, warm)
    predictor = out["spec"]["predictor"]
    assert predictor["model"] == {"modelFormat": {"name": "pytorch"}, "storageUri": uri}
    assert predictor.get("canaryTrafficPercent") == percent
    assert predictor["maxReplicas"] == max_replicas
    assert ServerlessRouter().canary_weight(out) == (percent or 0)


MODEL = {"modelFormat": {"name": "pytorch"}}
CANARY_ENTRY = {"trafficPercent": 25, "predictor": {"name": "v2", "model": {**MODEL, "storageUri": "s3://m/v2"},
                "minReplicas": 1, "maxReplicas": 3, "scaleMetric": "cpu", "scaleTarget": 70}}


@pytest.mark.parametrize("traffic,warm,canary", [
    (CANARY_25, False, CANARY_ENTRY),                          # KServe's V1beta1CanarySpec: trafficPercent + predictor
    (ROLLED_BACK, False, None),
    (IDLE, False, None),
    (Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0), True, {**CANARY_ENTRY, "trafficPercent": 0}),   # dark launch
])
def test_standard(traffic, warm, canary):
    out = apply(StandardRouter(), traffic, warm)
    assert out["spec"].get("canary") == (None if canary is None else [canary])
    assert out["spec"]["predictor"]["model"] == {**MODEL, "storageUri": traffic.stable_uri}   # stable stays the predictor
    assert out["spec"]["predictor"]["maxReplicas"] == 10                                      # with its full capacity
    assert "name" not in out["spec"]["predictor"]
    assert StandardRouter().canary_weight(out) == (canary or {}).get("trafficPercent", 0)


def test_standard_promotion_hands_the_canary_deployment_to_the_predictor():
    during = apply(StandardRouter(), Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 100))
    promoted = apply(StandardRouter(), IDLE, isvc=during)
    assert promoted["spec"]["predictor"]["name"] == "v2"       # {isvc}-v2-predictor keeps serving, no restart
    assert promoted["spec"]["predictor"]["model"]["storageUri"] == "s3://m/v2" and "canary" not in promoted["spec"]
    assert apply(StandardRouter(), IDLE, isvc=promoted) == promoted                           # and stays so


@pytest.mark.parametrize("version,name", [("v2", "v2"), ("V3_Errors", "v3-errors"), ("2026.11.1", "2026-11-1"), ("__", "canary")])
def test_canary_predictor_names_are_dns_labels(version, name):
    assert predictor_name(version) == name


@pytest.mark.parametrize("router", [ServerlessRouter(), StandardRouter()])
def test_versions_are_annotated_and_read_back(router):
    out = apply(router, CANARY_25)
    assert out["metadata"]["annotations"] == {STABLE_VERSION: "v1", CANARY_VERSION: "v2"}
    assert router.serving(out)[0] == "v1"
    promoted = apply(router, IDLE)
    assert CANARY_VERSION not in promoted["metadata"]["annotations"]


def test_serving_falls_back_to_the_uri_when_nothing_is_annotated():
    assert ServerlessRouter().serving(ISVC) == ("v1", "s3://m/v1")


@pytest.mark.parametrize("weight,expected", [(0, None), (1, Scale(1, 1, "cpu", 70)), (25, Scale(1, 3, "cpu", 70)),
                                             (50, Scale(1, 5, "cpu", 70)), (100, Scale(2, 10, "cpu", 70))])
def test_canary_capacity_follows_its_share(weight, expected):
    assert canary_scale(AUTO, weight) == expected


@pytest.mark.parametrize("target,patch,expected", [
    ({"a": 1}, {"a": None}, {}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),
])
def test_merge_patch_is_rfc_7386(target, patch, expected):
    assert merge_patch(target, patch) == expected
