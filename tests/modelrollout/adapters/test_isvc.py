"""Reading InferenceServices and merging patches into them."""
import pytest

from modelrollout.adapters.isvc import all_to, merge_patch, served
from modelrollout.builds import STORAGE_URI, Build


@pytest.mark.parametrize("target,patch,expected", [
    ({"a": 1}, {"a": None}, {}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),
    ({"a": 1}, {"b": {"c": None}}, {"a": 1, "b": {}}),
])
def test_merge_patch_is_rfc_7386(target, patch, expected):
    assert merge_patch(target, patch) == expected


def test_served_lists_the_shares_kserve_reports_by_what_each_revision_runs():
    isvc = {"status": {"components": {"predictor": {"traffic": [
        {"revisionName": "r2", "percent": 50, "latestRevision": True}, {"revisionName": "r4", "percent": 50},
        {"revisionName": "r1", "percent": 0}]}}}}
    runs = {"r2": {"metadata": {"annotations": {STORAGE_URI: "s3://m/v2"}}},
            "r4": {"metadata": {"annotations": {STORAGE_URI: "s3://m/v2"}}}}
    split = served(isvc, runs)
    assert [(b.storage_uri, p) for b, p in split] == [("s3://m/v2", 50), ("s3://m/v2", 50)]
    assert all_to(split, Build("s3://m/v2")) and not all_to(split, Build("s3://m/v1"))   # two revisions of v2: all to it
    assert served(isvc, {"r2": runs["r2"]}) is None                # a revision taking traffic is not known yet
