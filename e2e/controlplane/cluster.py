"""The whole local control plane: Kubernetes (kubernetes.py), Knative Serving (knative.py), KServe
(kserve.py) and the network stand-in (network.py), started in that order and stopped in reverse.

    with ControlPlane(workdir) as cp:
        cp.kube.kubectl("get", "isvc")

Only two things are stood in: the container runtime (kwok makes pods Running and Ready; predictor
processes serve in their place) and the network data plane (network.py).
"""
from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path

from .knative import Knative
from .kserve import KServe
from .kubernetes import Kubernetes
from .network import NetworkStandIn

HERE = Path(__file__).resolve().parent


def build() -> Path:
    """The built binaries and platform YAML (e2e/controlplane/build.sh; cached, so warm runs are quick)."""
    result = subprocess.run(["bash", str(HERE / "build.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"e2e/controlplane/build.sh failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


class ControlPlane:
    def __init__(self, workdir: Path | None = None, root: Path | None = None):
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="controlplane-"))
        self.root = Path(root) if root else build()
        self.kube = Kubernetes(self.dir, self.root)
        self.knative = Knative(self.kube, self.root / "config")
        self.kserve = KServe(self.kube, self.root / "config")
        self._stack = contextlib.ExitStack()

    def start(self) -> "ControlPlane":
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.kube)
            self.knative.install()
            stack.callback(self.knative.stop)
            self.knative.start()
            self.kserve.install()
            stack.callback(self.kserve.stop)
            self.kserve.start()
            stack.callback(NetworkStandIn(self.kube.kubeconfig).start().stop)
            self._stack = stack.pop_all()
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
