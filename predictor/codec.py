"""V2 tensors <-> numpy arrays, with every check a request must pass before it is batched.

A request that fails here is rejected alone (HTTP 400 / gRPC INVALID_ARGUMENT) and never
reaches a batch, so it cannot fail its neighbours. Every path in (lean REST, gRPC, KServe's
own) hands the codec the same v2.Request, so the checks and their messages are the same.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .config import ModelConfig, TensorSpec
from .errors import InvalidInput
from .v2 import Output, Request, Tensor


def _decode_input(inp: Tensor, spec: TensorSpec, allow_non_finite: bool) -> np.ndarray:
    where = f"input '{spec.name}'"
    datatype = (inp.datatype or "").upper()
    if datatype != spec.datatype:
        raise InvalidInput(f"{where}: datatype {datatype or '(none)'} does not match the model's {spec.datatype}")
    shape = list(inp.shape or [])
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidInput(f"{where}: shape {shape} must be a list of non-negative integers")
    if len(shape) != len(spec.shape) or tuple(shape[1:]) != spec.row_shape:
        raise InvalidInput(f"{where}: shape {shape} does not match the model's {list(spec.shape)} (-1 is the batch dimension)")
    if shape[0] == 0:
        raise InvalidInput(f"{where}: the batch dimension is 0; send at least one row")
    count = math.prod(shape)
    raw = inp.raw
    if raw is not None:
        expected = count * spec.dtype.itemsize
        if len(raw) != expected:
            raise InvalidInput(f"{where}: {len(raw)} bytes of raw data, but shape {shape} of {datatype} needs {expected}")
        array = np.frombuffer(raw, dtype=spec.dtype).reshape(shape)
    else:
        if inp.data is None:
            raise InvalidInput(f"{where}: no data")
        try:
            array = _json_array(inp.data, spec)
        except (ValueError, TypeError, OverflowError):
            raise InvalidInput(f"{where}: data is not a list of {datatype} values") from None
        except _NotWhole as exc:
            raise InvalidInput(f"{where}: {datatype} takes whole numbers within its range, got {exc.args[0]!r}") from None
        if array.size != count:
            raise InvalidInput(f"{where}: {array.size} values, but shape {shape} needs {count}")
        array = array.reshape(shape)
    if not allow_non_finite and array.dtype.kind == "f" and not np.isfinite(array).all():
        row = int(np.argwhere(~np.isfinite(array))[0][0])
        raise InvalidInput(f"{where}: contains NaN or infinity (first at row {row}); this model accepts finite values only")
    return array


class _NotWhole(Exception):
    pass


def _json_array(data, spec: TensorSpec) -> np.ndarray:
    """JSON values as the input's dtype; a fraction for an integer tensor is refused, not
    truncated (numpy would turn 1.7 into 1 without a word)."""
    if spec.dtype.kind not in "iub":
        return np.asarray(data, dtype=spec.dtype)
    values = np.asarray(data)
    if values.dtype.kind != "f":
        return np.asarray(data, dtype=spec.dtype)  # ints out of range raise OverflowError here
    fractions = values != np.trunc(values)
    if fractions.any():
        raise _NotWhole(values[fractions].flat[0].item())
    low, high = (0, 1) if spec.dtype.kind == "b" else (np.iinfo(spec.dtype).min, np.iinfo(spec.dtype).max)
    outside = (values < low) | (values >= float(high) + 1)  # high + 1 is exact in float64, high may not be
    if outside.any():  # a cast would wrap it round without a word
        raise _NotWhole(values[outside].flat[0].item())
    return values.astype(spec.dtype)


def decode_request(request: Request, config: ModelConfig) -> list[np.ndarray]:
    """The request's input arrays in the model's input order, or InvalidInput naming the problem."""
    by_name: dict[str, Tensor] = {}
    for inp in request.inputs:
        if inp.name in by_name:
            raise InvalidInput(f"input '{inp.name}' is given more than once")
        by_name[inp.name] = inp
    expected = config.input_names
    if len(by_name) != len(expected) or any(name not in by_name for name in expected):
        unknown = sorted(set(by_name) - set(expected))
        if unknown:
            raise InvalidInput(f"unknown input {unknown}; model '{config.name}' takes {expected}")
        missing = [name for name in expected if name not in by_name]
        raise InvalidInput(f"missing input {missing}; model '{config.name}' takes {expected}")
    arrays = [_decode_input(by_name[s.name], s, config.allow_non_finite) for s in config.inputs]
    if len(arrays) > 1 and len({a.shape[0] for a in arrays}) > 1:
        raise InvalidInput(f"inputs disagree on the batch dimension: {sorted({a.shape[0] for a in arrays})}")
    if request.outputs:
        names = [spec.name for spec in config.outputs]
        wrong = sorted(set(request.outputs) - set(names))
        if wrong:
            raise InvalidInput(f"unknown requested output {wrong}; model '{config.name}' returns {names}")
    return arrays


def select_outputs(request: Request, config: ModelConfig, arrays: Sequence[np.ndarray]) -> list[Output]:
    """The model's outputs the request asked for (all when it names none), each in its V2
    datatype, contiguous, and marked binary or JSON as the request says."""
    return [
        Output(spec.name, spec.datatype, np.ascontiguousarray(array, dtype=spec.dtype), request.binary(spec.name))
        for spec, array in zip(config.outputs, arrays)
        if request.outputs is None or spec.name in request.outputs
    ]
