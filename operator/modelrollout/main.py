"""`python -m modelrollout` / `modelrollout-operator`: run the operator.

Adapters are built here and handed to the handlers through kopf's memo: the Kubernetes client
from the service account or $KUBECONFIG, and a Prometheus source per rollout's analysis URL.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import signal
import threading

import kopf
from prometheus_client import start_http_server

from . import handlers  # noqa: F401  (registers the handlers)
from .adapters import inference
from .adapters.kube import KubeApi
from .adapters.hooks import Hooks
from .adapters.measure import PrometheusMeasure
from .adapters.shadow import PrometheusShadow
from .leader import lead, lease_name
from .metrics import OperatorMetrics
from .reconcile import Reconciler


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="modelrollout-operator", description="Reconciles ModelRollout resources.")
    p.add_argument(
        "--namespace",
        action="append",
        default=[n for n in env("WATCH_NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable; env WATCH_NAMESPACES, comma-separated); default all",
    )
    p.add_argument(
        "--metrics-port", type=int, default=int(env("METRICS_PORT", "9090")), help="port of the operator's /metrics (env METRICS_PORT; 0 disables)"
    )
    p.add_argument("--metrics-address", default=env("METRICS_ADDRESS", "0.0.0.0"), help="address /metrics listens on (env METRICS_ADDRESS)")
    p.add_argument(
        "--liveness", default=env("LIVENESS_ENDPOINT", "http://0.0.0.0:8080/healthz"), help="kopf's liveness endpoint (env LIVENESS_ENDPOINT)"
    )
    p.add_argument(
        "--resync",
        type=float,
        default=float(env("RESYNC_SECONDS", "10")),
        help="longest pause between two reconciles of a rollout, seconds (env RESYNC_SECONDS)",
    )
    p.add_argument(
        "--leader-election",
        default=env("LEADER_ELECTION", "true"),
        choices=["true", "false"],
        help="run only while holding a Lease, so replicas never reconcile together (env LEADER_ELECTION)",
    )
    p.add_argument(
        "--lease-namespace",
        default=env("POD_NAMESPACE", "modelrollout-system"),
        help="namespace of the leader-election Lease: the operator's own (env POD_NAMESPACE)",
    )
    p.add_argument("--verbose", action="store_true", default=env("VERBOSE") == "1")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.resync <= 0:
        raise SystemExit("--resync must be positive")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("leaderelection").setLevel(logging.WARNING)  # it logs every renewal at INFO
    kube = KubeApi.from_environment()
    metrics = OperatorMetrics()
    reconciler = Reconciler(
        kube,
        PrometheusMeasure(kube.get_secret, kube.get_config_map),
        metrics,
        evaluate=functools.partial(inference.evaluate, kube.get_config_map),
        hooks=Hooks(kube.get_secret, metrics),
        shadow=PrometheusShadow(kube.get_secret, kube.get_config_map),
    )
    if args.metrics_port:  # served while waiting for the Lease too
        start_http_server(args.metrics_port, addr=args.metrics_address, registry=reconciler.metrics.registry)
    # shared by every object's memo copy: rollouts by target InferenceService (and back), locks by rollout
    memo = kopf.Memo(reconciler=reconciler, resync=args.resync, namespaced=bool(args.namespace), targets={}, target_of={}, locks={})

    def operator(stop_flag: threading.Event | None = None):
        return kopf.operator(
            standalone=True,
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            liveness_endpoint=args.liveness or None,
            memo=memo,
            stop_flag=stop_flag,
        )

    if args.leader_election == "false":
        asyncio.run(operator())
        return
    # kopf runs in the election's thread, where it cannot take signals: the main thread turns
    # SIGTERM/SIGINT into kopf's stop flag (and a follower just leaves)
    stop, leading = threading.Event(), threading.Event()

    def on_signal(*_) -> None:
        stop.set()
        if not leading.is_set():
            raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def run_leading() -> None:
        leading.set()
        reconciler.metrics.leader.set(1)
        asyncio.run(operator(stop))

    lead(lease_name(args.namespace), args.lease_namespace, run_leading)


if __name__ == "__main__":
    main()
