import pytest

from modelrollout.conditions import conditions


@pytest.mark.parametrize("phase,true", [
    ("Idle", ["Ready"]), ("Promoted", ["Ready"]), ("Progressing", ["Progressing", "Reconciling"]),
    ("Evaluating", ["Progressing", "Reconciling"]), ("Holding", ["Progressing", "Reconciling"]), ("Paused", ["Paused"]),
    ("RolledBack", ["Degraded", "Stalled"]), ("Failed", ["Degraded", "Stalled"]), ("Waiting", ["Progressing", "Reconciling"]),
])
def test_the_conditions_true_in_each_phase(phase, true):
    out = conditions(phase, "why", 3, "2026-01-01T00:00:00Z", None)
    assert [c["type"] for c in out if c["status"] == "True"] == true
    assert all(c["reason"] == phase and c["observedGeneration"] == 3 for c in out)
    assert all(c["message"] == ("why" if c["type"] in true else "") for c in out)


def test_a_promotion_kserve_does_not_route_alone_yet_is_reconciling_not_ready():
    out = conditions("Promoted", "v2 promoted", 3, "T", None, settling=True)
    assert [c["type"] for c in out if c["status"] == "True"] == ["Reconciling"]


def test_a_refused_patch_stalls_whatever_the_phase():
    out = conditions("Progressing", "step 1", 3, "T", None, degraded=("RoutingFailed", "denied by policy"))
    true = {c["type"]: (c["reason"], c["message"]) for c in out if c["status"] == "True"}
    assert true == {"Progressing": ("Progressing", "step 1"), "Degraded": ("RoutingFailed", "denied by policy"),
                    "Stalled": ("RoutingFailed", "denied by policy")}


def test_transition_time_moves_only_when_the_status_flips():
    first = conditions("Progressing", "a", 1, "T1", None)
    same = conditions("Holding", "b", 2, "T2", first)
    assert {c["type"]: c["lastTransitionTime"] for c in same} == dict.fromkeys(
        ["Ready", "Progressing", "Paused", "Degraded", "Reconciling", "Stalled"], "T1")
    flipped = conditions("Promoted", "c", 2, "T3", same)
    assert {c["type"]: c["lastTransitionTime"] for c in flipped} == {
        "Ready": "T3", "Progressing": "T3", "Paused": "T1", "Degraded": "T1", "Reconciling": "T3", "Stalled": "T1"}
