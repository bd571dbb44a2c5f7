"""Counting what a model answers (predictions.py), and the config that declares it."""
import numpy as np
import pytest

from predictor.config import ConfigError, parse_model_config
from predictor.predictions import parse_predictions


def test_a_class_output_counts_the_argmax_of_each_row():
    spec = parse_predictions({"kind": "class", "labels": ["malignant", "benign"]}, "p", (2,))
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]], dtype=np.float32)
    assert spec.counts(probabilities) == {"malignant": 1, "benign": 2}
    assert spec.bins == ("malignant", "benign")
    assert parse_predictions({"kind": "class"}, "p", (3,)).counts(np.eye(3)[[2, 2, 0]]) == {"2": 2, "0": 1}


def test_a_value_output_bins_every_element_with_nan_apart():
    spec = parse_predictions({"kind": "value", "bounds": [0, 10.5, 20]}, "p", (2,))
    assert spec.bins == ("0.0", "10.5", "20.0", "+Inf", "NaN")          # as Prometheus writes `le`
    values = np.array([[-3.0, 0.0], [10.5, 11], [25, np.nan]])
    assert spec.counts(values) == {"0.0": 2, "10.5": 1, "20.0": 1, "+Inf": 1, "NaN": 1}
    many = np.tile(values, (10, 1))                      # past a few rows numpy counts: the same answer
    assert spec.counts(many) == {"0.0": 20, "10.5": 10, "20.0": 10, "+Inf": 10, "NaN": 10}   # a bound holds its own value


@pytest.mark.parametrize("raw, words", [
    ({"kind": "histogram"}, "kind: class"),
    ({"kind": "class", "labels": ["a"]}, "2 distinct labels"),
    ({"kind": "class", "labels": ["a", "a"]}, "2 distinct labels"),
    ({"kind": "value", "bounds": [1, 1]}, "ascending"),
    ({"kind": "value", "bounds": []}, "ascending"),
    ({"kind": "value", "bounds": [0, float("inf")]}, "finite"),
])
def test_a_bad_declaration_is_refused_naming_the_field(raw, words):
    config = {"name": "m", "version": "v1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
              "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2], "predictions": raw}]}
    with pytest.raises(ConfigError, match=r"outputs\[0\]\.predictions") as err:
        parse_model_config(config)
    assert words in str(err.value)


def test_inputs_have_no_predictions():
    config = {"name": "m", "version": "v1",
              "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2], "predictions": {"kind": "class"}}],
              "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]}
    with pytest.raises(ConfigError, match="only outputs"):
        parse_model_config(config)


def test_the_model_counts_what_it_answers_from_zero(tmp_path):
    """cancer v2 served in process: its class series exist at zero once loaded, and each answer
    adds its rows' argmax, whatever outputs the request asked for."""
    import asyncio
    from pathlib import Path

    import torch
    from prometheus_client import CollectorRegistry
    from sklearn.datasets import load_breast_cancer

    from predictor import v2
    from predictor.metrics import PredictorMetrics
    from predictor.model import TorchModel

    from .test_metrics import scrape

    registry = CollectorRegistry()
    model = TorchModel(Path(__file__).resolve().parents[2] / "models/cancer/v2", metrics=PredictorMetrics(registry))

    def counted():
        samples = scrape(registry)
        return {b: samples.get(("predictor_predictions_total", (("bin", b), ("model", "cancer"), ("output", "probabilities"),
                                                                 ("version", "v2")))) for b in ("malignant", "benign")}
    assert counted() == {"malignant": 0.0, "benign": 0.0}
    model.load()
    data, labels = load_breast_cancer(return_X_y=True)
    rows = data[:40].astype(np.float32)
    request = v2.Request([v2.Tensor("features", "FP32", list(rows.shape), rows.ravel().tolist())], outputs={})
    asyncio.run(model.infer(request, "rest"))           # asks for no output: the answer is still counted
    with torch.inference_mode():
        benign = int((torch.jit.load(str(model.model_dir / "model.pt"))(torch.from_numpy(rows)).argmax(1) == 1).sum())
    assert counted() == {"malignant": 40.0 - benign, "benign": float(benign)} and 0 < benign < 40
