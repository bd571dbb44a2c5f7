"""`python -m modelrollout` / `modelrollout-operator`: run the operator.

Adapters are built here and handed to the handlers through kopf's memo: the Kubernetes client
from the service account or $KUBECONFIG, and a Prometheus source per rollout's analysis URL.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf

from . import handlers  # noqa: F401  (registers the handlers)
from .adapters.kube import KubeApi
from .adapters.prometheus import PredictorMetricsSource, PrometheusClient
from .analysis import Measurements
from .metrics import OperatorMetrics
from .reconcile import Reconciler
from .spec import RolloutSpec


def measure_with_prometheus(spec: RolloutSpec, canary: str, stable: str) -> Measurements:
    source = PredictorMetricsSource(PrometheusClient(spec.analysis.prometheus_url))
    return source.measure(spec.model_name, canary, stable, spec.analysis.window)


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="modelrollout-operator", description="Reconciles ModelRollout resources.")
    p.add_argument("--namespace", action="append", default=[n for n in env("WATCH_NAMESPACES", "").split(",") if n],
                   help="watch only this namespace (repeatable; env WATCH_NAMESPACES, comma-separated); default all")
    p.add_argument("--metrics-port", type=int, default=int(env("METRICS_PORT", "9090")),
                   help="port of the operator's /metrics (env METRICS_PORT; 0 disables)")
    p.add_argument("--metrics-address", default=env("METRICS_ADDRESS", "0.0.0.0"),
                   help="address /metrics listens on (env METRICS_ADDRESS)")
    p.add_argument("--liveness", default=env("LIVENESS_ENDPOINT", "http://0.0.0.0:8080/healthz"),
                   help="kopf's liveness endpoint (env LIVENESS_ENDPOINT)")
    p.add_argument("--resync", type=float, default=float(env("RESYNC_SECONDS", "10")),
                   help="longest pause between two reconciles of a rollout, seconds (env RESYNC_SECONDS)")
    p.add_argument("--verbose", action="store_true", default=env("VERBOSE") == "1")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.resync <= 0:
        raise SystemExit("--resync must be positive")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    reconciler = Reconciler(KubeApi.from_environment(), measure_with_prometheus, OperatorMetrics())
    memo = kopf.Memo(reconciler=reconciler, resync=args.resync, metrics_port=args.metrics_port,
                     metrics_address=args.metrics_address)
    asyncio.run(kopf.operator(
        standalone=True, clusterwide=not args.namespace, namespaces=args.namespace,
        liveness_endpoint=args.liveness or None, memo=memo))


if __name__ == "__main__":
    main()
