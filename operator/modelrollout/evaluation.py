"""The evaluation step, before any traffic: a labelled holdout scored on candidate and stable. Pure.

The holdout is a V2 request body with labels beside it (what `models/train.py` writes for the
cancer models, and what a ConfigMap holds):

    {"inputs": [{"name": "features", "datatype": "FP32", "shape": [114, 30], "data": [...]}],
     "labels": [1, 0, ...]}

Both versions answer the same rows, so the comparison is paired and needs no test: the
candidate fails when its score on the holdout is worse than stable's by more than the margin
the spec allows, in the metric's own units. accuracy is the share of rows whose predicted class
(the output's argmax; a single column is P(class 1)) is the label; logLoss the mean negative log
of the probability given to the label; mae the mean absolute difference from the labels.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterator

import numpy as np

from .analysis import ERROR, FAIL, PASS, Verdict

HIGHER_IS_BETTER = {"accuracy": True, "logLoss": False, "mae": False}
PROBABILITY_SLACK = 1e-3  # how far a row of probabilities may sum from 1 (float32 softmax)
LOG_FLOOR = 1e-15  # log-loss clips probabilities here, as scikit-learn does


class HoldoutError(ValueError):
    """A holdout or a model's answer that cannot be scored; the message names the problem."""


@dataclasses.dataclass(frozen=True)
class Holdout:
    inputs: tuple[tuple[str, str, np.ndarray], ...]  # (name, V2 datatype, rows x ...) per input
    labels: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.labels)


def parse_holdout(text: str, where: str) -> Holdout:
    """where: how to name the holdout in errors (e.g. ConfigMap ns/name key)."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise HoldoutError(f"{where}: not JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("inputs"), list) or not raw["inputs"] or "labels" not in raw:
        raise HoldoutError(f'{where}: expected {{"inputs": [V2 input tensors], "labels": [...]}}')
    labels = np.asarray(raw["labels"], dtype=np.float64)
    if labels.ndim == 0 or not len(labels) or not np.isfinite(labels).all():
        raise HoldoutError(f"{where}: labels must be a non-empty list of finite numbers, one per row")
    inputs = []
    for i, tensor in enumerate(raw["inputs"]):
        name, datatype, shape = (tensor.get("name"), tensor.get("datatype"), tensor.get("shape")) if isinstance(tensor, dict) else (None,) * 3
        if not isinstance(name, str) or not isinstance(datatype, str) or not isinstance(shape, list) or not shape:
            raise HoldoutError(f"{where}: inputs[{i}] needs name, datatype, shape and data")
        try:
            data = np.asarray(tensor.get("data"), dtype=np.float64).reshape(shape)
        except (TypeError, ValueError) as exc:
            raise HoldoutError(f"{where}: inputs[{i}] ({name}): data does not fill shape {shape} ({exc})") from None
        if shape[0] != len(labels):
            raise HoldoutError(f"{where}: inputs[{i}] ({name}) has {shape[0]} rows but there are {len(labels)} labels")
        inputs.append((name, datatype, data))
    return Holdout(tuple(inputs), labels)


def batches(holdout: Holdout, size: int) -> Iterator[list[dict[str, Any]]]:
    """The holdout as V2 request inputs of at most `size` rows each, in order."""
    for start in range(0, holdout.rows, size):
        yield [
            {"name": name, "datatype": datatype, "shape": list(data[start : start + size].shape), "data": data[start : start + size].ravel().tolist()}
            for name, datatype, data in holdout.inputs
        ]


def _probabilities(output: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's probability of every class: one column is P(class 1)."""
    out = output.reshape(len(labels), -1)
    if out.shape[1] == 1:
        out = np.hstack([1 - out, out])
    return out


def score(metric: str, output: np.ndarray, labels: np.ndarray) -> float:
    """One version's score on the holdout: output is its answers, rows in the holdout's order."""
    if len(output) != len(labels):
        raise HoldoutError(f"the model answered {len(output)} rows for {len(labels)} labels")
    if metric == "mae":
        answered, wanted = output.reshape(len(labels), -1), labels.reshape(len(labels), -1)
        if answered.shape != wanted.shape:
            raise HoldoutError(f"mae: the model answered {answered.shape[1]} values per row for {wanted.shape[1]} labels")
        return float(np.abs(answered - wanted).mean())
    classes = labels.astype(np.int64)
    if (classes != labels).any() or (classes < 0).any():
        raise HoldoutError(f"{metric} needs class indices as labels (0, 1, ...), got {labels[classes != labels][:3].tolist()}")
    probs = _probabilities(output, labels)
    if classes.max() >= probs.shape[1]:
        raise HoldoutError(f"label {int(classes.max())} has no column in an output of {probs.shape[1]} classes")
    if metric == "accuracy":
        return float((probs.argmax(1) == classes).mean())
    sums = probs.sum(1)
    if (probs < 0).any() or np.abs(sums - 1).max() > PROBABILITY_SLACK:
        raise HoldoutError(f"logLoss needs probabilities, but rows sum to {sums.min():.3g}..{sums.max():.3g}")
    return float(-np.log(np.clip(probs[np.arange(len(classes)), classes], LOG_FLOOR, 1.0)).mean())


def judge(metric: str, margin: float, candidate: float, stable: float, rows: int) -> Verdict:
    """Pass unless the candidate is worse than stable by more than `margin` on the same rows."""
    worse_by = (stable - candidate) if HIGHER_IS_BETTER[metric] else (candidate - stable)
    details = {"metric": metric, "candidate": round(candidate, 6), "stable": round(stable, 6), "margin": margin, "rows": rows}
    text = f"{metric} on {rows} holdout rows: candidate {candidate:.4g}, stable {stable:.4g}"
    if worse_by > margin:
        return Verdict(FAIL, f"{text}, worse by {worse_by:.4g}, more than the margin {margin:g}", details)
    return Verdict(PASS, f"{text} (margin {margin:g})", details)


def unscored(reason: str) -> Verdict:
    """The evaluation could not run (the holdout unreadable, a version unreachable)."""
    return Verdict(ERROR, reason)
