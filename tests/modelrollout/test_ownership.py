"""Telling the operator's own InferenceService changes from anyone else's (table-driven)."""
import pytest

from modelrollout.ownership import FIELD_MANAGER, changed_by, external_change, record

ROLLING = {"phase": "Progressing", "canaryWeight": 10, "stepRequestedAt": "2026-12-01T00:00:00Z", "isvcGeneration": 4}
FIELDS = [
    {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-12-01T00:00:00Z",
     "fieldsV1": {"f:spec": {}}},
    {"manager": FIELD_MANAGER, "operation": "Update", "time": "2026-12-01T00:05:00Z", "fieldsV1": {"f:spec": {}}},
    {"manager": "argocd-controller", "operation": "Apply", "time": "2026-12-01T00:09:00Z", "fieldsV1": {"f:spec": {}}},
    {"manager": "kserve-controller", "operation": "Update", "time": "2026-12-01T00:10:00Z", "subresource": "status",
     "fieldsV1": {"f:status": {}}},
]


def isvc(generation, fields=()):
    return {"metadata": {"name": "cancer", "generation": generation, "managedFields": list(fields)}}


@pytest.mark.parametrize("status, generation, as_asked, changed", [
    (ROLLING, 4, False, False),                                     # as the operator left it
    (ROLLING, 5, True, True),                                       # someone's edit that happens to match
    ({**ROLLING, "isvcPatching": True}, 5, True, False),            # the operator's patch, not yet recorded
    ({**ROLLING, "isvcPatching": True}, 5, False, True),            # a change that raced the patch
    ({**ROLLING, "isvcPatching": True}, 6, True, True),
    ({**ROLLING, "phase": "Promoted"}, 5, False, False),            # no canary in place: anyone may edit it
    ({**ROLLING, "phase": "Paused", "canaryWeight": 0, "stepRequestedAt": None}, 5, False, False),  # not yet written
    ({**ROLLING, "phase": "Waiting", "resumePhase": "Holding"}, 5, False, True),
    ({k: v for k, v in ROLLING.items() if k != "isvcGeneration"}, 5, False, False),   # nothing recorded yet
])
def test_a_generation_the_operator_did_not_record_is_someone_elses_change(status, generation, as_asked, changed):
    found = external_change(status, isvc(generation, FIELDS), as_asked)
    assert (found is not None) == changed
    if changed:
        assert "argocd-controller (Apply at 2026-12-01T00:09:00Z)" in found and f"-> {generation}" in found


def test_who_changed_it_is_the_newest_spec_manager_that_is_not_the_operator():
    assert changed_by(isvc(5, FIELDS[:2])) == "kubectl-client-side-apply (Update at 2026-12-01T00:00:00Z)"
    assert changed_by(isvc(5, FIELDS[1:2])) == "someone else"


def test_the_record_says_whether_a_patch_is_on_its_way():
    assert record(isvc(7), patching=True) == {"isvcGeneration": 7, "isvcPatching": True}
    assert record(isvc(8), patching=False) == {"isvcGeneration": 8, "isvcPatching": None}
