"""The evaluation step's I/O against real predictor processes: the holdout the models were
tested on, scored through V2 REST on two versions at once."""
import dataclasses
from pathlib import Path

import pytest

from modelrollout.adapters.inference import evaluate, infer
from modelrollout.adapters.kube import NotFound
from modelrollout.analysis import ERROR, FAIL, PASS
from harness.processes import PredictorProcess

from ..test_planner_evaluation import spec as evaluated_spec

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
HOLDOUT = (REPO / "models/cancer/holdout.json").read_text()


@pytest.fixture(scope="module")
def predictors(tmp_path_factory):
    logs = tmp_path_factory.mktemp("predictors")
    dirs = {"v1": REPO / "models/cancer/v1", "v2": REPO / "models/cancer/v2",
            "v3-shifted": REPO / "tests/fixtures/models/cancer/v3-shifted"}
    processes = {v: PredictorProcess(d, log_path=logs / f"{v}.log").start() for v, d in dirs.items()}
    yield {v: f"http://{p.http_url}" for v, p in processes.items()}
    for p in processes.values():
        p.terminate()


def spec(**evaluation):
    base = evaluated_spec()
    return dataclasses.replace(base, evaluation=dataclasses.replace(base.evaluation, **evaluation))


def holdout(namespace, name):
    assert (namespace, name) == ("ns", "holdout")
    return {"holdout.json": HOLDOUT}


def test_a_candidate_that_predicts_worse_is_failed_with_both_scores(predictors):
    verdict = evaluate(holdout, spec(), "ns", {"candidate": predictors["v3-shifted"], "stable": predictors["v2"]})
    assert verdict.outcome == FAIL and verdict.details["rows"] == 114
    assert verdict.details["stable"] > 0.95 and verdict.details["candidate"] < 0.75   # models/train.py's test accuracies


def test_a_better_candidate_passes_and_log_loss_agrees(predictors):
    addresses = {"candidate": predictors["v2"], "stable": predictors["v1"]}
    accuracy = evaluate(holdout, spec(batch_size=50), "ns", addresses)
    assert accuracy.outcome == PASS and accuracy.details["candidate"] >= accuracy.details["stable"]
    log_loss = evaluate(holdout, spec(metric="logLoss", output="probabilities"), "ns", addresses)
    assert log_loss.outcome == PASS and log_loss.details["candidate"] < log_loss.details["stable"]


def test_the_batch_size_does_not_change_the_score(predictors):
    addresses = {"candidate": predictors["v2"], "stable": predictors["v1"]}
    scores = {evaluate(holdout, spec(batch_size=n), "ns", addresses).details["candidate"] for n in (1, 7, 114)}
    assert len(scores) == 1


def test_a_gateway_gets_the_request_with_kserves_host(predictors):
    # the predictor ignores Host; what matters is that nothing resolves the URL's name
    outputs = infer("http://latest-cancer-predictor.ns.svc.cluster.local", "cancer",
                    [{"name": "features", "datatype": "FP32", "shape": [1, 30], "data": [1.0] * 30}], 10,
                    gateway=predictors["v2"])
    assert outputs["probabilities"].shape == (1, 2)


def missing(namespace, name):
    raise NotFound(name)


@pytest.mark.parametrize("read, addresses, evaluation, problem", [
    (missing, None, {}, "ConfigMap ns/holdout not found"),
    (lambda ns, n: {"other.json": "{}"}, None, {}, "key holdout.json: no such key"),
    (lambda ns, n: {"holdout.json": "[]"}, None, {}, "expected"),
    (holdout, {"candidate": "http://127.0.0.1:9"}, {}, "candidate: http://127.0.0.1:9"),
    (holdout, {"stable": "http://prev-cancer-predictor.ns.invalid"}, {}, "set spec.evaluation.gateway"),
    (holdout, None, {"output": "logits"}, "no output 'logits' (it answered probabilities)"),
    (holdout, None, {"metric": "mae"}, "answered"),          # two probabilities per row against one label
])
def test_what_keeps_the_evaluation_from_running_is_an_error_naming_it(predictors, read, addresses, evaluation, problem):
    where = {"candidate": predictors["v2"], "stable": predictors["v1"], **(addresses or {})}
    verdict = evaluate(read, spec(**evaluation), "ns", where)
    assert verdict.outcome == ERROR and problem in verdict.reason, verdict.reason
