"""The torch side: load a model version, run a forward pass on numpy arrays, warm it up.

TorchRunner is the `run_batch` the batcher calls on its inference thread. On a GPU, inputs go
through pinned host memory (an asynchronous copy) and outputs come back to the host before
they are encoded; with `half`, float inputs and the model run in FP16 and outputs are cast back
to the config's datatype. The CPU path is the tested default.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .config import ConfigError, ModelConfig

log = logging.getLogger(__name__)


def cpu_limit(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The container's CPU limit in cores, from cgroup v2's cpu.max or v1's CFS quota; None when
    there is none."""
    v2 = cgroup / "cpu.max"
    if v2.is_file():
        quota, period = v2.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    quota_file, period_file = cgroup / "cpu" / "cpu.cfs_quota_us", cgroup / "cpu" / "cpu.cfs_period_us"
    if quota_file.is_file() and period_file.is_file():
        quota_us = int(quota_file.read_text())
        return None if quota_us <= 0 else quota_us / int(period_file.read_text())
    return None


def default_threads(limit: float | None, usable_cores: int) -> int:
    """Threads for a forward pass without TORCH_THREADS: the CPU limit rounded up, never more
    than the cores this process may run on. torch's own default is every core of the node, so
    a pod limited to 2 of 64 cores would run 64 threads and be throttled."""
    return max(1, min(usable_cores, math.ceil(limit))) if limit else max(1, usable_cores)


def set_torch_threads(threads: int | None) -> None:
    """Intra-op threads for the forward pass; one inter-op thread, since the batcher already
    runs batches on its own thread(s)."""
    threads = threads or default_threads(cpu_limit(), len(os.sched_getaffinity(0)))
    torch.set_num_threads(threads)
    log.info("torch uses %d intra-op thread(s)", threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once per process, before any parallel work
        pass


def resolve_device(wanted: str, half: bool = False, cuda_available: Callable[[], bool] = torch.cuda.is_available) -> torch.device:
    """`auto` is CUDA when torch sees a GPU, else the CPU. Asking for CUDA without one, or for
    half precision on the CPU, is refused at load with a message that says so."""
    if wanted == "auto":
        wanted = "cuda" if cuda_available() else "cpu"
    if wanted.startswith("cuda") and not cuda_available():
        raise ConfigError(f"device {wanted}: torch sees no CUDA device here (use --device cpu or auto)")
    if half and not wanted.startswith("cuda"):
        raise ConfigError("half precision needs a CUDA device (--device cuda or auto on a GPU node)")
    return torch.device(wanted)


class TorchRunner:
    def __init__(self, module: torch.nn.Module, config: ModelConfig, device: torch.device = torch.device("cpu")):
        self._module = module
        self._config = config
        self._device = device
        self._half = config.half

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        if not (array.flags.writeable and array.flags.c_contiguous):
            array = np.array(array, order="C")  # e.g. a view of a request's bytes: the model may write in place
        tensor = torch.from_numpy(array)
        if self._device.type == "cpu":
            return tensor
        tensor = tensor.pin_memory().to(self._device, non_blocking=True)
        return tensor.half() if self._half and tensor.is_floating_point() else tensor

    def __call__(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            result = self._module(*[self._to_device(a) for a in inputs])
        tensors = result if isinstance(result, (tuple, list)) else (result,)
        if len(tensors) != len(self._config.outputs):
            raise RuntimeError(f"the model returned {len(tensors)} outputs, its config lists {len(self._config.outputs)}")
        if self._device.type == "cpu":
            return [t.numpy() for t in tensors]
        return [t.to("cpu").numpy().astype(spec.dtype, copy=False) for t, spec in zip(tensors, self._config.outputs)]


def load_module(model_dir: Path, config: ModelConfig, device: torch.device = torch.device("cpu")) -> torch.nn.Module:
    path = Path(model_dir) / config.model_file
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist")
    module = torch.jit.load(str(path), map_location=device)
    module.eval()
    return module.half() if config.half else module


def warm_up(runner: TorchRunner, config: ModelConfig, batch_sizes: Sequence[int] | None = None) -> None:
    """Runs the model at batch 1 and at the largest batch, checking the outputs against the config.

    A model whose outputs disagree with its config fails here, at load, not on a user's request.
    """
    for rows in batch_sizes or sorted({1, config.batching.max_batch_size}):
        outputs = runner([np.zeros((rows, *spec.row_shape), spec.dtype) for spec in config.inputs])
        for spec, out in zip(config.outputs, outputs):
            if out.shape != (rows, *spec.row_shape):
                raise ConfigError(
                    f"output '{spec.name}': the model returned shape {list(out.shape)} for {rows} rows, the config says {list(spec.shape)}"
                )
            if out.dtype != spec.dtype:
                raise ConfigError(f"output '{spec.name}': the model returned {out.dtype}, the config says {spec.datatype}")
    log.info("warmed up %s/%s at batch sizes %s", config.name, config.version, batch_sizes or [1, config.batching.max_batch_size])
