"""`python -m e2e.controlplane [--workdir DIR]`: the local control plane (Kubernetes, Knative
Serving, KServe) in a network namespace of its own, until Ctrl-C or SIGTERM. It prints the
kubeconfig and how another shell joins the namespace to use it, e.g.

    nsenter --net=/proc/PID/ns/net <kubectl> --kubeconfig DIR/admin.kubeconfig get isvc -A
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from . import netns
from .cluster import ControlPlane


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="logs, certs and kubeconfigs (default: a new temporary directory)")
    args = parser.parse_args()
    netns.isolate()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = time.monotonic()
    with ControlPlane(args.workdir) as cp:
        print(f"control plane up in {time.monotonic() - started:.1f}s; logs in {cp.kube.logs}\n"
              f"  {netns.enter_command()} {cp.kube.bin / 'kubectl'} --kubeconfig {cp.kube.kubeconfig} get isvc,mro -A",
              flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
