"""The operator as a real process (`python -m modelrollout`) pointed at a kubeconfig."""
from __future__ import annotations

import signal
import sys
import urllib.request
from pathlib import Path

from harness.processes import ChildProcess, free_port, metric, wait_until_answers

REPO = Path(__file__).resolve().parents[2]


class OperatorProcess(ChildProcess):
    def __init__(self, kubeconfig: Path, log_path: Path, resync: float = 0.5, namespace: str | None = None,
                 leading: bool = True, lease_namespace: str | None = None):
        """leading: wait until it holds the leader-election Lease and runs (else only until /metrics answers);
        lease_namespace: the operator's own namespace (its Deployment passes POD_NAMESPACE)."""
        super().__init__(log_path, {"KUBECONFIG": str(kubeconfig)}, cwd=REPO)
        self.kubeconfig, self.resync, self.namespace = kubeconfig, resync, namespace
        self.lease_namespace = lease_namespace
        self.leading = leading
        self.metrics_port, self.health_port = free_port(), free_port()

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "modelrollout", "--resync", str(self.resync), "--metrics-port", str(self.metrics_port),
               "--metrics-address", "127.0.0.1",
               "--liveness", f"http://127.0.0.1:{self.health_port}/healthz"]
        if self.namespace:
            cmd += ["--namespace", self.namespace]
        if self.lease_namespace:
            cmd += ["--lease-namespace", self.lease_namespace]
        return cmd

    def wait_ready(self) -> None:
        url = f"http://127.0.0.1:{self.health_port}/healthz" if self.leading else f"http://127.0.0.1:{self.metrics_port}/metrics"
        assert self.proc is not None
        wait_until_answers(url, self.proc, "operator", self.log_path)

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on the operator's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return metric(r.read().decode(), name)

    def kill(self) -> None:
        """As a crashed or evicted pod ends: SIGKILL, no shutdown."""
        self.stop(sig=signal.SIGKILL)
