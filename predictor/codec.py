"""V2 tensors <-> numpy arrays, with every check a request must pass before it is batched.

A request that fails here is rejected alone (HTTP 400 / gRPC INVALID_ARGUMENT) and never
reaches a batch, so it cannot fail its neighbours.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput

from .config import ModelConfig, TensorSpec


def _decode_input(inp: InferInput, spec: TensorSpec, allow_non_finite: bool) -> np.ndarray:
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
    raw = inp._raw_data  # set by KServe for gRPC raw_input_contents and the REST binary extension
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
            raise InvalidInput(f"{where}: {datatype} takes whole numbers, got {exc.args[0]!r}") from None
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
    if values.dtype.kind == "f":
        fractions = values != np.trunc(values)
        if fractions.any():
            raise _NotWhole(values[fractions].flat[0].item())
    return values.astype(spec.dtype, casting="unsafe") if values.dtype.kind == "f" else np.asarray(data, dtype=spec.dtype)


def decode_request(request: InferRequest, config: ModelConfig) -> list[np.ndarray]:
    """The request's input arrays in the model's input order, or InvalidInput naming the problem."""
    by_name: dict[str, InferInput] = {}
    for inp in request.inputs or []:
        if inp.name in by_name:
            raise InvalidInput(f"input '{inp.name}' is given more than once")
        by_name[inp.name] = inp
    expected = [spec.name for spec in config.inputs]
    unknown = sorted(set(by_name) - set(expected))
    if unknown:
        raise InvalidInput(f"unknown input {unknown}; model '{config.name}' takes {expected}")
    missing = [name for name in expected if name not in by_name]
    if missing:
        raise InvalidInput(f"missing input {missing}; model '{config.name}' takes {expected}")
    arrays = [_decode_input(by_name[s.name], s, config.allow_non_finite) for s in config.inputs]
    rows = {a.shape[0] for a in arrays}
    if len(rows) > 1:
        raise InvalidInput(f"inputs disagree on the batch dimension: {sorted(rows)}")
    if request.request_outputs:
        names = [spec.name for spec in config.outputs]
        wrong = sorted({o.name for o in request.request_outputs} - set(names))
        if wrong:
            raise InvalidInput(f"unknown requested output {wrong}; model '{config.name}' returns {names}")
    return arrays


def _binary(request: InferRequest, name: str) -> bool:
    """Whether an output goes back in binary: its own `binary_data` parameter when the request
    gives one, else the request's `binary_data_output` (V2 binary-data extension)."""
    for requested in request.request_outputs or []:
        if requested.name == name and requested.binary_data is not None:
            return bool(requested.binary_data)
    return bool(request.use_binary_outputs)


def encode_response(request: InferRequest, config: ModelConfig, outputs: Sequence[np.ndarray],
                    model_name: str) -> InferResponse:
    """A V2 response with the model's outputs (only the requested ones, if the request names any),
    under the name the model is served as."""
    wanted = {o.name for o in request.request_outputs} if request.request_outputs else None
    infer_outputs, encodings = [], []
    for spec, array in zip(config.outputs, outputs):
        if wanted is not None and spec.name not in wanted:
            continue
        binary = _binary(request, spec.name)
        out = InferOutput(name=spec.name, shape=list(array.shape), datatype=spec.datatype)
        out.set_data_from_numpy(np.ascontiguousarray(array, dtype=spec.dtype), binary_data=binary)
        infer_outputs.append(out)
        encodings.append(RequestedOutput(spec.name, {"binary_data": binary}))   # KServe's REST encoder reads these
    return InferResponse(
        response_id=request.id or "", model_name=model_name, model_version=config.version,
        infer_outputs=infer_outputs, from_grpc=request.from_grpc, use_binary_outputs=bool(request.use_binary_outputs),
        requested_outputs=None if request.from_grpc else encodings,
    )
