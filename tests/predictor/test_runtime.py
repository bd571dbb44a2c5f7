"""The torch runtime's choices: threads without TORCH_THREADS, the device, the GPU path."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from predictor.config import ConfigError, load_model_config
from predictor.runtime import TorchRunner, cpu_limit, default_threads, load_module, resolve_device

CANCER = Path(__file__).resolve().parents[2] / "models" / "cancer" / "v2"


@pytest.mark.parametrize("files, limit", [
    ({"cpu.max": "200000 100000\n"}, 2.0),                        # cgroup v2, a 2-core limit
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),                          # v2, no limit
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),   # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),                                                   # no cgroup files at all
])
def test_cpu_limit_reads_cgroup_v2_and_v1(tmp_path, files, limit):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_limit(tmp_path) == limit


@pytest.mark.parametrize("limit, cores, threads", [
    (2.0, 64, 2),          # a 2-core pod on a 64-core node: 2 threads, not 64
    (1.5, 64, 2),          # rounded up
    (0.5, 64, 1),
    (8.0, 4, 4),           # never more than the cores it may run on
    (None, 6, 6),          # no limit: every usable core
])
def test_default_threads_follow_the_limit(limit, cores, threads):
    assert default_threads(limit, cores) == threads


@pytest.mark.parametrize("wanted, half, gpu, device", [
    ("auto", False, False, "cpu"),
    ("auto", False, True, "cuda"),
    ("cuda:1", True, True, "cuda:1"),
    ("cpu", False, True, "cpu"),
])
def test_the_device_is_resolved_from_what_torch_sees(wanted, half, gpu, device):
    assert str(resolve_device(wanted, half, cuda_available=lambda: gpu)) == device


@pytest.mark.parametrize("wanted, half, words", [
    ("cuda", False, "torch sees no CUDA device"),
    ("cpu", True, "half precision needs a CUDA device"),
    ("auto", True, "half precision needs a CUDA device"),       # auto fell back to the CPU
])
def test_a_device_that_cannot_serve_is_refused_at_load(wanted, half, words):
    with pytest.raises(ConfigError, match=words):
        resolve_device(wanted, half, cuda_available=lambda: False)


def test_an_unknown_device_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="'tpu' is not cpu, cuda, cuda:N or auto"):
        load_model_config(CANCER).__class__(**{**vars(load_model_config(CANCER)), "device": "tpu"})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine: the GPU path runs only where one exists")
@pytest.mark.parametrize("half, tolerance", [(False, 1e-5), (True, 2e-2)])
def test_on_a_gpu_the_outputs_equal_the_cpu_ones_and_come_back_as_host_arrays(half, tolerance):
    config = dataclasses.replace(load_model_config(CANCER), device="cuda", half=half)
    x = np.random.default_rng(0).standard_normal((8, 30)).astype(np.float32)
    cpu = TorchRunner(load_module(CANCER, load_model_config(CANCER)), load_model_config(CANCER))([x])[0]
    device = resolve_device("cuda", half)
    gpu = TorchRunner(load_module(CANCER, config, device), config, device)([x])[0]
    assert isinstance(gpu, np.ndarray) and gpu.dtype == np.float32
    np.testing.assert_allclose(gpu, cpu, rtol=tolerance, atol=tolerance)
