"""Run the predictor as a real server process on loopback, for tests, benchmarks and the local
stack: `with PredictorProcess("models/cancer/v2") as p: p.http_url ...`; ChildProcess, the one
base of every process the tests start (Prometheus, the operator, the control plane's daemons).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def metric(text: str, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels`, in Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system) a process, or one of its threads, has used so far."""
    stat = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()         # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(condition: Callable[[], T], timeout: float = 60.0, what: str = "condition", interval: float = 0.1) -> T:
    """Poll condition until it returns something true; its value is returned. The one poller of
    tests, e2e and bench: a condition waited on, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen | None, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Send sig to a process we started, wait up to timeout, then kill it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until_answers(url: str, proc: subprocess.Popen, what: str, log: object, timeout: float = 60.0) -> None:
    """Poll url until it answers 200; fail early, naming the log, if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before it was ready; log: {log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready at {url} after {timeout}s; log: {log}")


class ChildProcess:
    """A process this run starts: its output into a log file (or nowhere), stopped by its own PID
    (SIGTERM, SIGKILL after a timeout), a context manager. A subclass says what to run (command)
    and when it is ready (wait_ready); a process that fails to get ready is stopped, not left."""
    stop_timeout = 30.0

    def __init__(self, log_path: str | Path | None = None, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.log_path = Path(log_path) if log_path else None
        self.env, self.cwd = env or {}, cwd
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def wait_ready(self) -> None:
        """Returns once the process serves; by default at once."""

    def start(self):
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        try:
            self.wait_ready()
        except BaseException:
            stop_process(self.proc, self.stop_timeout)     # the process only: its log names why
            raise
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float | None = None, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, self.stop_timeout if timeout is None else timeout, sig)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LoopbackServer:
    """A V2 server's two free loopback ports (REST and gRPC) and their addresses."""

    def __init__(self):
        self.http_port, self.grpc_port = free_port(), free_port()

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


class PredictorProcess(ChildProcess, LoopbackServer):
    stop_timeout = 60.0

    def __init__(self, model_dir: str | Path, *args: str, name: str | None = None,
                 log_path: str | Path | None = None, env: dict[str, str] | None = None,
                 cpu: int | None = None, ready_timeout: float = 60.0):
        ChildProcess.__init__(self, log_path, {"TORCH_THREADS": "1", "SHUTDOWN_DELAY": "0", **(env or {})})
        LoopbackServer.__init__(self)
        self.model_dir = Path(model_dir)
        self.args = list(args) + (["--model_name", name] if name else [])
        self.cpu = cpu
        self.ready_timeout = ready_timeout

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "predictor", "--model_dir", str(self.model_dir),
               "--http_port", str(self.http_port), "--grpc_port", str(self.grpc_port), *self.args]
        return cmd if self.cpu is None else ["taskset", "-c", str(self.cpu), *cmd]

    def wait_ready(self) -> None:
        assert self.proc is not None, "start() first"
        wait_until_answers(f"http://{self.http_url}/v2/health/ready", self.proc, "predictor", self.log_path, self.ready_timeout)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://{self.http_url}/metrics", timeout=5) as r:
            return r.read().decode()

    def terminate(self, timeout: float = 60.0) -> int:
        """Stops it as Kubernetes does (SIGTERM, then SIGKILL); its exit code."""
        self.stop(timeout)
        return self.proc.returncode if self.proc else 0
