"""The servers the benchmark compares, each started pinned to the server core with one torch
thread: this predictor (batched and unbatched), stock KServe, and MLServer."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from predictor.config import load_model_config  # noqa: E402
from harness.processes import ChildProcess, LoopbackServer, PredictorProcess, free_port, wait_until_answers  # noqa: E402

SERVER_CPU = 0
MLSERVER_VENV = Path(os.environ.get("MLSERVER_VENV", Path.home() / ".cache" / "modelrollout" / "venv-mlserver"))


@dataclasses.dataclass(frozen=True)
class BenchModel:
    name: str
    dir: Path
    input: str
    row_shape: list[int]         # one request's shape: a single row
    output: str
    max_batch_size: int
    max_batch_time: float        # seconds


def bench_model(model_dir: Path) -> BenchModel:
    config = load_model_config(model_dir)
    spec = config.inputs[0]
    return BenchModel(config.name, model_dir, spec.name, [1, *spec.row_shape], config.outputs[0].name,
                      config.batching.max_batch_size, config.batching.max_queue_delay)


class MLP(torch.nn.Module):
    """The light model of the issue: 64 -> 512 -> 512 -> 10, ReLU."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                          torch.nn.ReLU(), torch.nn.Linear(512, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def make_light_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.jit.script(MLP().eval()).save(str(folder / "model.pt"))
    (folder / "config.yaml").write_text(json.dumps({
        "name": "mlp", "version": "v1", "description": "benchmark: light MLP 64-512-512-10",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 10]}],
        "batching": {"max_batch_size": 64, "max_queue_delay_ms": 2, "max_queue_size": 4096}}))
    return folder


class _Process(ChildProcess, LoopbackServer):
    """A peer's server process pinned to the server core."""

    def __init__(self, cmd: list[str], log: Path, cwd: Path | None = None, env: dict | None = None):
        ChildProcess.__init__(self, log, {"OMP_NUM_THREADS": "1", **(env or {})}, cwd)
        LoopbackServer.__init__(self)
        self.cmd = [c.format(http=self.http_port, grpc=self.grpc_port) for c in cmd]

    def command(self) -> list[str]:
        return ["taskset", "-c", str(SERVER_CPU), *self.cmd]

    def wait_ready(self) -> None:
        assert self.proc is not None
        wait_until_answers(f"http://{self.http_url}/v2/health/ready", self.proc, self.cmd[0], self.log_path, 120)


def ours(model: BenchModel, log: Path, batching: bool):
    return PredictorProcess(model.dir, "--batching", str(batching).lower(), cpu=SERVER_CPU, log_path=log)


def stock_kserve(model: BenchModel, log: Path):
    return _Process([sys.executable, str(ROOT / "bench" / "baselines" / "stock_kserve.py"), "--model_dir", str(model.dir),
                     "--model_name", model.name, "--output", model.output, "--http_port", "{http}",
                     "--grpc_port", "{grpc}"], log)


def mlserver_available() -> str | None:
    """None if MLServer can run here, else why not."""
    if not (MLSERVER_VENV / "bin" / "mlserver").exists():
        return f"no MLServer venv at {MLSERVER_VENV} (bash bench/setup_mlserver.sh makes one)"
    return None


@contextlib.contextmanager
def mlserver(model: BenchModel, log: Path, workdir: Path):
    folder = workdir / f"mlserver-{model.name}"
    shutil.rmtree(folder, ignore_errors=True)
    server = _Process([str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)], log, cwd=folder)
    folder.mkdir(parents=True)
    (folder / "settings.json").write_text(json.dumps({
        "http_port": server.http_port, "grpc_port": server.grpc_port, "metrics_port": free_port(),
        "parallel_workers": 0, "host": "127.0.0.1", "debug": False}))
    (folder / "model-settings.json").write_text(json.dumps({
        "name": model.name, "implementation": "mlserver_runtime.TorchScriptRuntime",
        "max_batch_size": model.max_batch_size, "max_batch_time": model.max_batch_time,
        "parameters": {"uri": str(model.dir / "model.pt"), "extra": {"output": model.output}}}))
    shutil.copy(ROOT / "bench" / "baselines" / "mlserver_runtime.py", folder)
    with server:
        yield server
