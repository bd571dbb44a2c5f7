"""Reading InferenceServices and merging patches into them."""
import pytest

from modelrollout.adapters.isvc import STORAGE_URI, merge_patch, served_uris


@pytest.mark.parametrize("target,patch,expected", [
    ({"a": 1}, {"a": None}, {}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),
])
def test_merge_patch_is_rfc_7386(target, patch, expected):
    assert merge_patch(target, patch) == expected


def test_served_uris_sums_the_shares_kserve_reports_by_the_model_each_revision_runs():
    isvc = {"status": {"components": {"predictor": {"traffic": [
        {"revisionName": "r2", "percent": 50, "latestRevision": True}, {"revisionName": "r4", "percent": 50},
        {"revisionName": "r1", "percent": 0}]}}}}
    runs = {"r2": {"metadata": {"annotations": {STORAGE_URI: "s3://m/v2"}}},
            "r4": {"metadata": {"annotations": {STORAGE_URI: "s3://m/v2"}}}}
    assert served_uris(isvc, runs) == {"s3://m/v2": 100}          # two revisions of the candidate: all to it
    assert served_uris(isvc, {"r2": runs["r2"]}) is None           # a revision taking traffic is not known yet
