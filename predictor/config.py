"""A model version's config (models/<name>/<version>/config.yaml) and the server's settings.

The config says what the model accepts and returns, so the codec can reject bad input before
it reaches a batch, and the metadata endpoint reports real tensor names, datatypes and shapes.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .predictions import PredictionsError, PredictionSpec, parse_predictions

CONFIG_FILE = "config.yaml"
_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")

# V2 datatypes the predictor serves, with their numpy equivalents.
V2_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}


class ConfigError(ValueError):
    """A model config that cannot be served; the message names the file and the field."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # the first dimension is the batch dimension, always -1
    predictions: PredictionSpec | None = None  # outputs: how answers are counted (predictions.py)

    @property
    def dtype(self) -> np.dtype:
        return V2_DTYPES[self.datatype]

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class BatchingConfig:
    enabled: bool = True
    max_batch_size: int = 32  # rows per forward pass
    max_queue_delay: float = 0.002  # seconds a request may wait for a batch to fill while busy
    max_queue_size: int = 1024  # rows waiting; beyond it requests are rejected at once
    instances: int = 1  # forward passes that may run at the same time
    request_timeout: float | None = None  # seconds from arrival; None means no deadline
    forward_timeout: float | None = 30.0  # watchdog: a forward pass longer than this fails its batch; None: off

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"batching.max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_queue_delay < 0:
            raise ConfigError(f"batching.max_queue_delay_ms must be >= 0, got {self.max_queue_delay * 1000}")
        if self.max_queue_size < self.max_batch_size:
            raise ConfigError(f"batching.max_queue_size ({self.max_queue_size}) must be >= max_batch_size ({self.max_batch_size})")
        if self.instances < 1:
            raise ConfigError(f"batching.instances must be >= 1, got {self.instances}")
        if self.request_timeout is not None and self.request_timeout <= 0:
            raise ConfigError("batching.request_timeout_ms must be > 0")
        if self.forward_timeout is not None and self.forward_timeout <= 0:
            raise ConfigError("batching.forward_timeout_ms must be > 0 (0 in config or flag turns the watchdog off)")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    version: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batching: BatchingConfig = BatchingConfig()
    allow_non_finite: bool = False
    model_file: str = "model.pt"
    platform: str = "pytorch_torchscript"
    device: str = "cpu"  # cpu, cuda, cuda:N, or auto (cuda when torch sees one)
    half: bool = False  # run float inputs and the model in FP16 (CUDA only)

    def __post_init__(self) -> None:
        if not _DEVICE.match(self.device):
            raise ConfigError(f"device: {self.device!r} is not cpu, cuda, cuda:N or auto")

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def with_batching(self, **changes: Any) -> "ModelConfig":
        """The same config with some batching settings overridden (flags, environment)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, batching=dataclasses.replace(self.batching, **changes))


def _tensor(raw: Any, where: str, output: bool = False) -> TensorSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with name, datatype and shape")
    name, datatype, shape = raw.get("name"), str(raw.get("datatype", "")).upper(), raw.get("shape")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: a non-empty string is required")
    if datatype not in V2_DTYPES:
        why = {
            "BF16": " (numpy has no bfloat16, so it cannot be decoded or batched; use FP16 or FP32)",
            "BYTES": " (variable-length strings cannot be batched as tensors)",
        }.get(datatype, "")
        raise ConfigError(f"{where}.datatype: {raw.get('datatype')!r} is not served{why}; choose one of {sorted(V2_DTYPES)}")
    if not isinstance(shape, list) or not shape or shape[0] != -1 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise ConfigError(f"{where}.shape: expected [-1, positive ints...] (-1 is the batch dimension), got {shape!r}")
    if "predictions" in raw and not output:
        raise ConfigError(f"{where}.predictions: only outputs have predictions to count")
    try:
        predictions = parse_predictions(raw["predictions"], f"{where}.predictions", tuple(shape[1:])) if raw.get("predictions") is not None else None
    except PredictionsError as exc:
        raise ConfigError(str(exc)) from None
    return TensorSpec(name, datatype, tuple(shape), predictions)


def parse_model_config(raw: dict[str, Any], source: str = CONFIG_FILE) -> ModelConfig:
    """Builds a ModelConfig from the parsed YAML, with errors that name the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    for key in ("name", "version", "inputs", "outputs"):
        if key not in raw:
            raise ConfigError(f"{source}: missing required field {key!r}")
    inputs = tuple(_tensor(t, f"{source}: inputs[{i}]") for i, t in enumerate(raw["inputs"] or []))
    outputs = tuple(_tensor(t, f"{source}: outputs[{i}]", output=True) for i, t in enumerate(raw["outputs"] or []))
    if not inputs or not outputs:
        raise ConfigError(f"{source}: at least one input and one output are required")
    b = raw.get("batching") or {}
    timeout_ms, forward_ms = b.get("request_timeout_ms"), b.get("forward_timeout_ms", 30_000)
    try:
        batching = BatchingConfig(
            enabled=bool(b.get("enabled", True)),
            max_batch_size=int(b.get("max_batch_size", BatchingConfig.max_batch_size)),
            max_queue_delay=float(b.get("max_queue_delay_ms", BatchingConfig.max_queue_delay * 1000)) / 1000,
            max_queue_size=int(b.get("max_queue_size", BatchingConfig.max_queue_size)),
            instances=int(b.get("instances", BatchingConfig.instances)),
            request_timeout=None if timeout_ms is None else float(timeout_ms) / 1000,
            forward_timeout=None if not forward_ms else float(forward_ms) / 1000,
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return ModelConfig(
        name=str(raw["name"]),
        version=str(raw["version"]),
        inputs=inputs,
        outputs=outputs,
        batching=batching,
        allow_non_finite=bool(raw.get("allow_non_finite", False)),
        model_file=str(raw.get("model_file", "model.pt")),
        platform=str(raw.get("platform", "pytorch_torchscript")),
        device=str(raw.get("device", "cpu")),
        half=bool(raw.get("half", False)),
    )


def load_model_config(model_dir: Path | str) -> ModelConfig:
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in model directory {model_dir}")
    return parse_model_config(yaml.safe_load(path.read_text()), str(path))
