"""The operator's own metrics: what a dashboard reads about each rollout."""
from prometheus_client import generate_latest

from modelrollout.metrics import OperatorMetrics

EVALUATED = {"phase": "Progressing", "stableVersion": "v1", "canaryVersion": "v2", "canaryWeight": 20,
             "evaluation": {"verdict": "Pass", "metric": "accuracy", "candidate": 0.97, "stable": 0.92,
                            "version": "v2", "stableVersion": "v1"}}


def scores(metrics):
    return sorted(line for line in generate_latest(metrics.registry).decode().splitlines()
                  if line.startswith("modelrollout_evaluation_score{"))


def test_the_evaluation_scores_are_labelled_with_the_versions_they_belong_to_and_go_with_the_rollout():
    m = OperatorMetrics()
    m.observe("ns", "cancer", EVALUATED)
    assert scores(m) == [
        'modelrollout_evaluation_score{metric="accuracy",name="cancer",namespace="ns",role="candidate",version="v2"} 0.97',
        'modelrollout_evaluation_score{metric="accuracy",name="cancer",namespace="ns",role="stable",version="v1"} 0.92']
    m.observe("ns", "cancer", {**EVALUATED, "phase": "Promoted", "stableVersion": "v2", "canaryVersion": None})
    assert len(scores(m)) == 2 and 'role="stable",version="v1"' in scores(m)[1]     # still the versions compared
    m.observe("ns", "cancer", {**EVALUATED, "canaryVersion": "v3", "evaluation": None})  # a new rollout: not scored yet
    assert scores(m) == []
    m.observe("ns", "cancer", EVALUATED)
    m.forget("ns", "cancer")
    assert scores(m) == []
