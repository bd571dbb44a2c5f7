"""The evaluation step's pure parts: reading a holdout, scoring answers, judging the pair."""
import json

import numpy as np
import pytest

from modelrollout.analysis import FAIL, PASS
from modelrollout.evaluation import HoldoutError, batches, judge, parse_holdout, score

LABELS = [1, 0, 1, 1]
HOLDOUT = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [4, 2], "data": [[0, 1], [2, 3], [4, 5], [6, 7]]}],
           "labels": LABELS}


def test_a_holdout_is_sent_in_order_in_batches_of_at_most_the_size():
    holdout = parse_holdout(json.dumps(HOLDOUT), "cm")
    sent = list(batches(holdout, 3))
    assert [b[0]["shape"] for b in sent] == [[3, 2], [1, 2]]
    assert sum((b[0]["data"] for b in sent), []) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert sent[0][0]["name"] == "features" and sent[0][0]["datatype"] == "FP32"


@pytest.mark.parametrize("holdout, problem", [
    ("{not json", "not JSON"),
    (json.dumps({"inputs": []}), "expected"),
    (json.dumps({**HOLDOUT, "labels": []}), "labels must be"),
    (json.dumps({**HOLDOUT, "labels": [1, None, 0, 1]}), "labels must be"),
    (json.dumps({**HOLDOUT, "labels": [1, 0, 1]}), "4 rows but there are 3 labels"),
    (json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [4, 3], "data": list(range(8))}],
                 "labels": LABELS}), "does not fill shape [4, 3]"),
    (json.dumps({"inputs": [{"name": "features", "shape": [4, 2], "data": list(range(8))}], "labels": LABELS}),
     "inputs[0] needs name, datatype"),
])
def test_a_bad_holdout_is_refused_naming_the_problem_and_where(holdout, problem):
    with pytest.raises(HoldoutError, match="ConfigMap ns/h") as err:
        parse_holdout(holdout, "ConfigMap ns/h")
    assert problem in str(err.value)


PROBS = np.array([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])     # argmax 1, 0, 0, 1: 3 of 4 right


@pytest.mark.parametrize("metric, output, labels, expected", [
    ("accuracy", PROBS, LABELS, 0.75),
    ("accuracy", PROBS[:, 1:], LABELS, 0.75),                            # one column: P(class 1)
    ("logLoss", PROBS, LABELS, -np.mean(np.log([0.8, 0.9, 0.4, 0.7]))),
    ("logLoss", np.array([[0.0, 1.0]]), [0], -np.log(1e-15)),            # clipped, as scikit-learn does
    ("mae", np.array([[1.0], [2.0]]), [1.5, 1.0], 0.75),
    ("mae", np.array([[1.0, 2.0], [3.0, 4.0]]), [[1, 2], [3, 5]], 0.25),
])
def test_scores(metric, output, labels, expected):
    assert score(metric, output, np.asarray(labels, dtype=float)) == pytest.approx(expected)


@pytest.mark.parametrize("metric, output, labels, problem", [
    ("logLoss", np.array([[2.0, 3.0]]), [1], "needs probabilities"),     # logits are not probabilities
    ("accuracy", PROBS, [1, 0, 1, 0.5], "class indices"),
    ("accuracy", PROBS, [1, 0, 2, 1], "label 2 has no column"),
    ("accuracy", PROBS[:3], LABELS, "answered 3 rows for 4 labels"),
    ("mae", PROBS, LABELS, "2 values per row for 1 labels"),
])
def test_answers_that_cannot_be_scored_say_why(metric, output, labels, problem):
    with pytest.raises(HoldoutError, match=problem):
        score(metric, output, np.asarray(labels, dtype=float))


@pytest.mark.parametrize("metric, margin, candidate, stable, outcome", [
    ("accuracy", 0.0, 0.95, 0.95, PASS),
    ("accuracy", 0.0, 0.94, 0.95, FAIL),
    ("accuracy", 0.02, 0.94, 0.95, PASS),           # within the margin
    ("accuracy", 0.02, 0.66, 0.97, FAIL),
    ("accuracy", 0.0, 0.99, 0.95, PASS),            # better is never refused
    ("logLoss", 0.05, 0.30, 0.20, FAIL),            # lower is better
    ("logLoss", 0.0, 0.10, 0.20, PASS),
    ("mae", 0.5, 2.4, 2.0, PASS),
    ("mae", 0.5, 2.6, 2.0, FAIL),
])
def test_the_candidate_fails_only_when_worse_than_stable_by_more_than_the_margin(metric, margin, candidate, stable, outcome):
    verdict = judge(metric, margin, candidate, stable, rows=114)
    assert verdict.outcome == outcome
    assert verdict.details == {"metric": metric, "candidate": candidate, "stable": stable, "margin": margin, "rows": 114}
    assert f"{metric} on 114 holdout rows" in verdict.reason
