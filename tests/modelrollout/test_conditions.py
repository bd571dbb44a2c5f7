import pytest

from modelrollout.conditions import conditions


@pytest.mark.parametrize("phase,true", [("Idle", "Ready"), ("Promoted", "Ready"), ("Progressing", "Progressing"),
                                        ("Holding", "Progressing"), ("Paused", "Paused"), ("RolledBack", "Degraded"),
                                        ("Failed", "Degraded"), ("Waiting", "Progressing")])
def test_one_condition_is_true_per_phase(phase, true):
    out = conditions(phase, "why", 3, "2026-01-01T00:00:00Z", None)
    assert [c["type"] for c in out if c["status"] == "True"] == [true]
    assert all(c["reason"] == phase and c["observedGeneration"] == 3 for c in out)
    assert next(c for c in out if c["type"] == true)["message"] == "why"


def test_transition_time_moves_only_when_the_status_flips():
    first = conditions("Progressing", "a", 1, "T1", None)
    same = conditions("Holding", "b", 2, "T2", first)
    assert {c["type"]: c["lastTransitionTime"] for c in same} == {"Ready": "T1", "Progressing": "T1", "Paused": "T1", "Degraded": "T1"}
    flipped = conditions("Promoted", "c", 2, "T3", same)
    assert {c["type"]: c["lastTransitionTime"] for c in flipped} == {"Ready": "T3", "Progressing": "T3", "Paused": "T1", "Degraded": "T1"}
