"""`kubectl modelrollout get`'s screen, drawn from ModelRollouts as the reconciler leaves them."""
import copy

from modelrollout.plugin.screen import gate_figures, render
from tests.packaging.phases import PHASES


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_a_rollout_under_way_shows_who_serves_what_and_its_steps():
    out = lines(render(PHASES["Holding"]))
    assert "Status:           ◌ Holding" in out
    assert "Stable:           v1  pvc://models/cancer/v1  95%" in out and "Canary:           v2  pvc://models/cancer/v2  5%" in out
    steps = out[out.index("  STEP  WEIGHT  HOLD"):][1:5]
    assert [s.split()[:3] for s in steps] == [["1", "5%", "2m"], ["2", "25%", "1m"], ["3", "50%", "1m"], ["4", "100%", "-"]]
    assert steps[0].endswith("◌ Holding") and "Analysis:         ? Inconclusive at 2026-11-22T12:03:00Z" in out


def test_each_gate_is_shown_with_its_figures():
    obj = copy.deepcopy(PHASES["Progressing"])
    obj["status"]["lastAnalysis"] = {
        "verdict": "Fail", "time": "T", "reason": "canary p99 48.8ms is worse", "requests": 160, "stableRequests": 595,
        "errorRate": 0.0, "stableErrorRate": 0.001, "errorPValue": 0.5, "rolloutErrorRate": 0.0, "errorRateBounds": [0, 0.02],
        "latencyP99": 0.0488, "stableLatencyP99": 0.01602, "tailBound": 0.018, "tailShares": [0.0438, 0.0],
        "latencyPValue": 0.00018, "gates": {"absoluteError": "Pass", "relativeLatency": "Fail"}}
    out = lines(render(obj))
    rows = next(out[i:] for i, line in enumerate(out) if line.split() == ["GATE", "RESULT", "FIGURES"])
    assert rows[1].split()[:2] == ["absoluteError", "Pass"] and rows[1].endswith("error rate 0.00% (0.00%-2.00%)")
    assert rows[2].endswith("p99 48.8ms vs 16ms; slower than 18ms: 4.38% vs 0.00%, p=0.00018")
    assert "                  requests: canary 160, stable 595" in out


def test_the_shadow_step_shows_each_outputs_disagreement():
    obj = copy.deepcopy(PHASES["Shadowing"])
    assert "Status:           ◌ Shadowing" in lines(render(obj))
    obj["status"]["shadow"] = {"verdict": "Inconclusive", "version": "v2", "reason": "shadow: 30 < 200 paired predictions",
                               "outputs": {"probabilities": {"pairs": 30, "disagreement": 0.0333}}}
    assert "Shadow:           ? Inconclusive v2: probabilities 3.33% of 30 pairs" in lines(render(obj))


def test_the_drift_gate_names_each_output():
    a = {"predictionDrift": {"probabilities": {"distance": 0.31, "lowerBound": 0.22}}}
    assert gate_figures("predictionDrift", a) == "probabilities distance 0.31 (at least 0.22)"


def test_a_promotion_marks_every_step_passed_and_a_rollback_its_step():
    promoted = lines(render(PHASES["Promoted, routed alone"]))
    assert sum(line.endswith("✔ passed") for line in promoted) == 4 and "Conditions:       Ready" in promoted
    rolled = lines(render(PHASES["RolledBack"]))
    assert "Conditions:       Degraded, Stalled" in rolled and "Message:          v2 rolled back to v1: aborted by spec.abort" in rolled


def test_a_rollout_the_operator_has_not_read_says_so():
    obj = {"metadata": {"name": "new", "namespace": "ns", "generation": 1}, "spec": {"inferenceService": "cancer"}}
    assert "Status:           (not reconciled yet)" in lines(render(obj))
    stale = copy.deepcopy(PHASES["Idle"])
    stale["metadata"]["generation"] = 5
    assert "                  the operator has not read generation 5 yet" in lines(render(stale))


def test_events_are_listed_oldest_first():
    events = [{"eventTime": "2026-11-22T12:01:00Z", "type": "Warning", "reason": "RolledBack", "message": "m2"},
              {"eventTime": "2026-11-22T12:00:00Z", "type": "Normal", "reason": "RolloutStarted", "message": "m1"}]
    out = lines(render(PHASES["RolledBack"], events))
    at = out.index("EVENTS")
    assert [line.split()[2] for line in out[at + 2:]] == ["RolloutStarted", "RolledBack"]
