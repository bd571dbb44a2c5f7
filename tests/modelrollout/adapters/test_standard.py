"""The standard-mode router: `spec.canary[]` as KServe's webhook accepts it (table-driven)."""
import pytest

from modelrollout.adapters.autoscaling import stable_scale
from modelrollout.adapters.isvc import merge_patch
from modelrollout.adapters.standard import StandardRouter, predictor_name
from modelrollout.builds import Build
from modelrollout.planner import Traffic
from modelrollout.spec import AutoscalingSpec

STABLE = stable_scale(AutoscalingSpec(min_replicas=2, max_replicas=10, metric="cpu", target=70))
MODEL = {"modelFormat": {"name": "pytorch"}}
ISVC = {"metadata": {"name": "cancer"}, "spec": {"predictor": {"model": {**MODEL, "storageUri": "s3://m/v1"}}}}
CANARY_25 = Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 25)
ROLLED_BACK = Traffic("v1", "s3://m/v1", "v2", "s3://m/v2", 0)
CANCELLED = Traffic("v1", "s3://m/v1")
PROMOTED = Traffic("v2", "s3://m/v2")
CANARY_ENTRY = {"trafficPercent": 25, "predictor": {"name": "v2", "model": {**MODEL, "storageUri": "s3://m/v2"}}}


def apply(traffic, isvc=ISVC):
    return merge_patch(isvc, StandardRouter().patch(isvc, traffic, STABLE, {}))


@pytest.mark.parametrize("traffic,canary", [
    (CANARY_25, CANARY_ENTRY),        # KServe's V1beta1CanarySpec, fixed replicas: no autoscaling fields
    (ROLLED_BACK, None),
    (CANCELLED, None),
])
def test_standard(traffic, canary):
    out = apply(traffic)
    assert out["spec"].get("canary") == (None if canary is None else [canary])
    assert out["spec"]["predictor"]["model"] == {**MODEL, "storageUri": traffic.stable_uri}   # stable stays the predictor
    assert out["spec"]["predictor"]["maxReplicas"] == 10 and "name" not in out["spec"]["predictor"]
    assert StandardRouter().canary_weight(out) == (canary or {}).get("trafficPercent", 0)


def test_standard_promotion_hands_the_canary_deployment_to_the_predictor():
    during = apply(CANARY_25)
    promoted = apply(PROMOTED, isvc=during)
    assert promoted["spec"]["predictor"]["name"] == "v2"       # {isvc}-v2-predictor keeps serving, no restart
    assert promoted["spec"]["predictor"]["model"]["storageUri"] == "s3://m/v2" and "canary" not in promoted["spec"]
    assert apply(PROMOTED, isvc=promoted) == promoted                       # and stays so


def test_what_a_canary_does_not_take_always_goes_to_stable():
    assert StandardRouter().blocked(ISVC, Build("s3://m/v1"), {}) is None


@pytest.mark.parametrize("isvc,version,name", [
    ("cancer", "v2", "v2"), ("cancer", "V3_Errors", "v3-errors"), ("cancer", "2026.11.1", "v-2026-11-1"),
    ("cancer", "__", "v"), ("x" * 40, "release-candidate-2026", "release-cand"),
])
def test_canary_predictor_names_are_dns_labels_that_start_with_a_letter(isvc, version, name):
    assert predictor_name(isvc, version) == name
    assert len(f"{isvc}-{name}-predictor") <= 63


def test_nothing_is_written_into_the_inference_service_annotations():
    assert "annotations" not in apply(CANARY_25)["metadata"]


def test_a_runtime_change_goes_into_the_canary_entry_and_with_the_promotion_into_the_main_predictor():
    from modelrollout.builds import Runtime, candidate
    pod = {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    isvc = {"metadata": {"name": "cancer"}, "spec": {"predictor": {"model": {**MODEL, "storageUri": "s3://m/v1", "resources": pod}}}}
    stable = Runtime(None, pod)
    new = candidate(stable, "0.5.0", {"limits": {"cpu": "2"}})
    at_25 = apply(Traffic("v1", "s3://m/v1", "v2", "s3://m/v1", 25, stable_runtime=stable, canary_runtime=new), isvc)
    entry = at_25["spec"]["canary"][0]["predictor"]
    assert entry == {"name": "v2", "model": {**MODEL, "storageUri": "s3://m/v1", "runtimeVersion": "0.5.0",
                                              "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}}}
    assert at_25["spec"]["predictor"]["model"] == isvc["spec"]["predictor"]["model"]    # stable untouched
    promoted = apply(Traffic("v2", "s3://m/v1", stable_runtime=new), at_25)
    assert promoted["spec"]["predictor"]["name"] == "v2" and "canary" not in promoted["spec"]
    assert promoted["spec"]["predictor"]["model"] == entry["model"]       # the canary's Deployment, unchanged
