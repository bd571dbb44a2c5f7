"""The traffic driver routes as KServe would (table-driven)."""
import pytest

from e2e.localstack.driver import kserve_split


def isvc(uri, pct=None, canary=None):
    predictor = {"model": {"storageUri": uri}}
    if pct is not None:
        predictor["canaryTrafficPercent"] = pct
    spec = {"predictor": predictor}
    if canary is not None:
        spec["canary"] = canary
    return {"spec": spec}


@pytest.mark.parametrize("obj,rolled_out,split,after", [
    (isvc("v1"), None, [("v1", 100)], "v1"),                                   # first revision takes all
    (isvc("v2", 0), "v1", [("v1", 100), ("v2", 0)], "v1"),                     # new revision warming at 0%
    (isvc("v2", 20), "v1", [("v1", 80), ("v2", 20)], "v1"),                    # canary share to the latest
    (isvc("v2", 100), "v1", [("v2", 100)], "v2"),                              # 100% rolls the latest out
    (isvc("v2"), "v1", [("v2", 100)], "v2"),                                   # no canary field: latest is all
    (isvc("v1", 0), "v1", [("v1", 100), ("v1", 0)], "v1"),                     # rollback pins the old revision
])
def test_serverless(obj, rolled_out, split, after):
    assert kserve_split(obj, "serverless", rolled_out) == (split, after)


def test_standard_sends_each_canary_entry_its_share():
    obj = isvc("v1", canary=[{"trafficPercent": 30, "predictor": {"name": "v2", "model": {"storageUri": "v2"}}}])
    assert kserve_split(obj, "standard", None) == ([("v1", 70), ("v2", 30)], "v1")
    assert kserve_split(isvc("v1"), "standard", None) == ([("v1", 100)], "v1")
