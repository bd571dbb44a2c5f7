"""What a model version answers, counted: the prediction distribution the operator compares
between canary and stable (issue 15's drift gate). Declared per output in the model's config:

    outputs:
    - name: probabilities
      ...
      predictions: {kind: class, labels: [malignant, benign]}   # argmax over the last axis
    - name: next_day_temperature
      ...
      predictions: {kind: value, bounds: [0, 10, 20, 30]}       # every element, binned

A class output counts one prediction per position of its other axes (a row of [-1, C]); a value
output counts every element in the first bin whose upper bound holds it (`+Inf` above the last,
`NaN` on its own: a model that starts answering NaN has drifted). Pure: arrays in, counts out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from prometheus_client.utils import floatToGoString


class PredictionsError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class PredictionSpec:
    kind: str  # "class" or "value"
    bins: tuple[str, ...]  # every bin's label, in order (each series exists from zero)
    bounds: tuple[float, ...] = ()  # value: ascending upper bounds

    def bin_index(self, array: np.ndarray) -> np.ndarray:
        """Each prediction's bin, as an index into bins: a class output's argmax per position, a
        value output's first bin whose upper bound holds the element (NaN its own, last, bin)."""
        if self.kind == "class":
            return np.argmax(array, axis=-1).ravel()
        values = np.asarray(array, dtype=np.float64).ravel()
        index = np.searchsorted(self.bounds, values, side="left")  # NaN sorts last: fixed below
        index[np.isnan(values)] = len(self.bins) - 1
        return index

    def counts(self, array: np.ndarray) -> dict[str, int]:
        """{bin: predictions} of one answer (bins with none left out)."""
        index = self.bin_index(array)
        if index.size > 16:
            return {self.bins[i]: int(n) for i, n in enumerate(np.bincount(index, minlength=len(self.bins))) if n}
        out: dict[str, int] = {}  # a few rows (the usual request): cheaper in Python
        for i in index.tolist():
            out[self.bins[i]] = out.get(self.bins[i], 0) + 1
        return out


def parse_predictions(raw: Any, where: str, row_shape: tuple[int, ...]) -> PredictionSpec:
    """From an output's `predictions:` mapping; row_shape: the output's shape without the batch axis."""
    if not isinstance(raw, dict) or raw.get("kind") not in ("class", "value"):
        raise PredictionsError(f"{where}: expected {{kind: class, labels: [...]}} or {{kind: value, bounds: [...]}}")
    if raw["kind"] == "class":
        if not row_shape:
            raise PredictionsError(f"{where}: a class output needs a last axis of class scores, got shape [-1]")
        classes = row_shape[-1]
        labels = raw.get("labels", list(range(classes)))
        if not isinstance(labels, list) or len(labels) != classes or len({str(x) for x in labels}) != classes:
            raise PredictionsError(f"{where}.labels: expected {classes} distinct labels (the last axis has {classes})")
        return PredictionSpec("class", tuple(str(x) for x in labels))
    bounds = raw.get("bounds")
    if (
        not isinstance(bounds, list)
        or not bounds
        or not all(isinstance(b, (int, float)) for b in bounds)
        or any(b >= a for a, b in zip(bounds[1:], bounds))
        or not np.all(np.isfinite(bounds))
    ):
        raise PredictionsError(f"{where}.bounds: expected finite numbers in ascending order, got {bounds!r}")
    return PredictionSpec("value", tuple(floatToGoString(float(b)) for b in bounds) + ("+Inf", "NaN"), tuple(float(b) for b in bounds))
