"""Telling versions apart by what their revisions run: the storageUri, the runtime image and its
resources, as KServe builds a revision from the template (builds.py)."""
import pytest

from modelrollout.builds import (STORAGE_URI, Build, Runtime, adopt, candidate, holds, is_candidate, of_revision,
                                 overlay, quantities, replacing, retag, with_revision)
from modelrollout.spec import parse_spec

IMAGE = "kind.local/modelrollout-predictor:0.4.0"
POD = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}


def revision(uri="s3://m/v1", image=IMAGE, resources=POD):
    return {"metadata": {"annotations": {STORAGE_URI: uri}},
            "spec": {"containers": [{"name": "queue-proxy-not-here", "image": "other"},
                                    {"name": "kserve-container", "image": image, "resources": resources}]}}


@pytest.mark.parametrize("image, tag, expected", [
    ("ghcr.io/x/predictor:0.4.0", "0.5.0", "ghcr.io/x/predictor:0.5.0"),
    ("ghcr.io/x/predictor", "0.5.0", "ghcr.io/x/predictor:0.5.0"),
    ("registry:5000/predictor", "1.2", "registry:5000/predictor:1.2"),       # a port is no tag
    ("ghcr.io/x/predictor@sha256:" + "a" * 64, "0.5.0", "ghcr.io/x/predictor@sha256:" + "a" * 64),
])
def test_a_runtime_version_is_the_image_tag_as_kserve_sets_it(image, tag, expected):
    assert retag(image, tag) == expected


def test_quantities_compare_as_numbers():
    assert quantities({"requests": {"cpu": "2000m"}}) == quantities({"requests": {"cpu": 2}})
    assert quantities({"limits": {"memory": "1Gi"}}) != quantities({"limits": {"memory": "1G"}})


def test_resources_overlay_name_by_name_and_a_replacement_removes_what_the_wanted_lack():
    assert overlay(POD, {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}) == {
        "requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    assert overlay(None, None) is None
    patch = replacing({"requests": {"cpu": "2", "nvidia.com/gpu": "1"}, "limits": {"cpu": "2"}}, {"requests": {"cpu": "1"}})
    assert patch == {"requests": {"nvidia.com/gpu": None, "cpu": "1"}, "limits": None}


def test_a_revision_runs_its_uri_and_its_predictor_containers_image_and_resources():
    build = of_revision(revision())
    assert build == Build("s3://m/v1", IMAGE, quantities(POD))
    assert of_revision({"metadata": {"annotations": {}}}) is None


@pytest.mark.parametrize("wanted, runs, matches", [
    (Build("s3://m/v1"), Build("s3://m/v1", IMAGE, quantities(POD)), True),      # not known: storageUri alone
    (Build("s3://m/v1", IMAGE), Build("s3://m/v1", retag(IMAGE, "0.5.0")), False),
    (Build("s3://m/v1", IMAGE, quantities(POD)), Build("s3://m/v1", IMAGE, quantities(overlay(POD, {"requests": {"cpu": "500m"}}))), False),
    (Build("s3://m/v1", IMAGE, quantities({"requests": {"cpu": "1000m"}})), Build("s3://m/v1", IMAGE, quantities({"requests": {"cpu": "1"}})), True),
    (Build("s3://m/v1"), Build("s3://m/v2"), False),
    (Build("s3://m/v1"), None, False),
])
def test_a_build_matches_a_revision_on_everything_both_know(wanted, runs, matches):
    assert wanted.matches(runs) is matches


def test_the_candidate_runs_stables_image_retagged_and_its_resources_over_stables():
    stable = Runtime(None, POD, IMAGE, POD)
    new = candidate(stable, "0.5.0", {"requests": {"cpu": "500m"}})
    assert new == Runtime("0.5.0", overlay(POD, {"requests": {"cpu": "500m"}}), retag(IMAGE, "0.5.0"),
                          overlay(POD, {"requests": {"cpu": "500m"}}))
    assert candidate(stable, None, None) == stable                              # a new model only: the same runtime
    assert candidate(Runtime(), "0.5.0", None) == Runtime("0.5.0")               # stable's revision not known yet


def test_what_a_revision_runs_is_taken_only_from_one_made_from_the_template():
    template = Runtime("0.5.0", {"requests": {"cpu": "2"}})
    assert with_revision(template, Runtime(image=IMAGE, pod_resources={"requests": {"cpu": "2"}})) == template   # another tag
    assert with_revision(template, Runtime(image=retag(IMAGE, "0.5.0"), pod_resources=POD)) == template   # other resources
    made = Runtime(image=retag(IMAGE, "0.5.0"), pod_resources={"requests": {"cpu": "2000m"}, "limits": {"cpu": "2"}})
    assert with_revision(template, made) == Runtime("0.5.0", template.resources, made.image, made.pod_resources)


def test_an_idle_template_edited_by_its_owner_is_adopted_not_reverted():
    recorded = Runtime(None, POD, IMAGE, POD)
    edited = Runtime(None, overlay(POD, {"limits": {"memory": "4Gi"}}), IMAGE, POD)   # KServe has not rolled it out yet
    assert adopt(recorded, edited) == Runtime(None, edited.resources)            # its revision is read anew
    assert adopt(recorded, Runtime(None, POD)) == recorded


def test_a_template_holds_a_version_by_uri_tag_and_resources_in_quantity():
    model = {"storageUri": "s3://m/v1", "runtimeVersion": "0.5.0", "resources": {"requests": {"cpu": "2"}}}
    assert holds(model, "s3://m/v1", Runtime("0.5.0", {"requests": {"cpu": "2000m"}}))
    assert not holds(model, "s3://m/v1", Runtime(None, {"requests": {"cpu": "2"}}))   # stable has no runtimeVersion
    assert not holds(model, "s3://m/v1", Runtime("0.5.0", {"requests": {"cpu": "1"}}))
    assert holds(model, "s3://m/v1", None) and not holds(model, "s3://m/v2", None)


def _spec(**model):
    return parse_spec({"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "s3://m/v1", **model},
                       "analysis": {"prometheus": {"url": "http://p:9090"}}, "strategy": {"steps": [{"weight": 50}, {"weight": 100}]}})


def test_the_status_candidate_is_the_specs_until_its_runtime_fields_change():
    stable = Runtime(None, POD, IMAGE, POD)
    status = {"canaryVersion": "v2", "canaryStorageUri": "s3://m/v1", "stableRuntime": stable.to_status(),
              "canaryRuntime": candidate(stable, "0.5.0", None).to_status()}
    assert is_candidate(_spec(runtimeVersion="0.5.0"), status)
    assert not is_candidate(_spec(runtimeVersion="0.6.0"), status)
    assert not is_candidate(_spec(runtimeVersion="0.5.0", resources={"limits": {"memory": "4Gi"}}), status)
    assert is_candidate(_spec(), {"canaryVersion": "v2", "canaryStorageUri": "s3://m/v1"})   # recorded before runtimes
