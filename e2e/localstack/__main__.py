"""The local stack as a demo: `python -m e2e.localstack [--candidate v2|v3-errors|v3-slow] [--mode serverless|standard]`.

Starts the real control plane (Kubernetes, Knative Serving, KServe; e2e/controlplane) in a network
namespace of its own, the stable (v1) and candidate predictors, Prometheus, the operator and the
traffic driver on 127.0.0.1; applies an InferenceService and a ModelRollout with kubectl; then
prints, once a second, the rollout's phase and weight and what the clients see per version. In
another shell, the printed `nsenter ... kubectl get mro -w` shows the same. Ctrl-C stops
everything (or --exit-when-done, once the rollout is promoted or rolled back).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from e2e.controlplane import netns
from e2e.controlplane.cluster import ControlPlane

from .observe import status_of
from .prometheus import PrometheusServer
from .stack import Predictors, Rollout, model_rollout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidate", default="v2", choices=["v2", "v3-errors", "v3-slow"])
    parser.add_argument("--mode", default="serverless", choices=["serverless", "standard"])
    parser.add_argument("--rate", type=float, default=60.0, help="requests per second from the driver")
    parser.add_argument("--interval", default="10s", help="time at each step before analysis")
    parser.add_argument("--exit-when-done", action="store_true")
    parser.add_argument("--timeout", type=float, default=900.0, help="stop after this many seconds in any case")
    args = parser.parse_args()
    netns.isolate()
    workdir = Path(tempfile.mkdtemp(prefix="modelrollout-localstack-"))
    print(f"logs and kubeconfig in {workdir}", flush=True)
    with ControlPlane(workdir / "controlplane") as control_plane, Predictors(["v1", args.candidate], workdir) as predictors, \
            PrometheusServer(predictors.targets()) as prometheus, \
            Rollout(control_plane, predictors, prometheus, workdir, mode=args.mode, rate=args.rate) as stack:
        command = " ".join(stack.api.command("get", "mro", "-w"))
        print(f"Prometheus {prometheus.url}   API server {control_plane.kube.url}\n"
              f"watch it:  {netns.enter_command()} {command}\n", flush=True)
        stack.apply(model_rollout(args.candidate, prometheus.url, mode=args.mode, interval=args.interval))
        deadline = time.monotonic() + args.timeout
        try:
            while time.monotonic() < deadline:
                s = status_of(stack.api)
                seen = "  ".join(f"{v}: {r['requests']} req {r['errors']} err p99 {r['p99_ms']}ms"
                                 for v, r in stack.driver.report().items())
                verdict = (s.get("lastAnalysis") or {}).get("verdict", "-")
                print(f"{time.strftime('%H:%M:%S')} {s.get('phase', '-'):11s} canary {s.get('canaryVersion') or '-':9s} "
                      f"{s.get('canaryWeight', 0):3d}%  verdict {verdict:12s} | {seen}", flush=True)
                if args.exit_when_done and s.get("phase") in ("Promoted", "RolledBack"):
                    print(s.get("message", ""))
                    return 0
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
