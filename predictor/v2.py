"""A V2 inference request and its answer as the model sees them, whichever way they arrived:
the lean REST path (rest.py), the gRPC path (grpc_infer.py) or KServe's own (model.predict).

Plain data and no framework types, so that one codec checks every request with the same
messages, and each protocol layer only parses and serializes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np


@dataclasses.dataclass(slots=True)
class Tensor:
    """One input tensor as the client sent it, not yet checked against the model."""

    name: str
    datatype: str
    shape: Any  # checked by the codec: a list of non-negative integers
    data: Any = None  # JSON values, or a gRPC typed-contents sequence
    raw: bytes | memoryview | None = None  # REST binary extension or gRPC raw_input_contents


@dataclasses.dataclass(slots=True)
class Request:
    inputs: list[Tensor]
    id: str = ""
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # The outputs the request names, each with its own `binary_data` (None when it gives none);
    # None when it names none, which means all of them.
    outputs: dict[str, bool | None] | None = None
    binary_output: bool = False  # the request's `binary_data_output`: the default for every output

    def binary(self, output: str) -> bool:
        """Whether an output goes back in binary: its own `binary_data` wins over the request's
        `binary_data_output` (V2 binary-data extension)."""
        own = self.outputs.get(output) if self.outputs else None
        return self.binary_output if own is None else own


@dataclasses.dataclass(slots=True)
class Output:
    name: str
    datatype: str
    array: np.ndarray  # C-contiguous, in the datatype's dtype, on the host
    binary: bool  # REST only: in the binary tail rather than as JSON `data`
