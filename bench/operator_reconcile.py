"""The operator with many ModelRollouts on a real kube-apiserver:
`python bench/operator_reconcile.py [--rollouts 500] [--watch 60]` (as root: it makes a network namespace).

Starts Kubernetes from e2e/controlplane (etcd, kube-apiserver with RBAC; KServe's and Knative's
CRDs, not their controllers, so the machine's two cores go to the apiserver and the operator
rather than to 500 fake revisions), a real Prometheus, and the operator as a real process (kopf,
authenticated as its ServiceAccount). It creates N serverless InferenceServices, for each the
Knative Revision running stable's storageUri, writes into each InferenceService the status KServe
writes once it has rolled out that revision (the operator waits for that before a canary), and N
ModelRollouts, then reports:
  lag   how long each rollout took from its creation to its first step asked of KServe (the
        InferenceService patched and status.stepRequestedAt written)
  cpu   the operator's CPU per reconcile, and in cores over the run, while every rollout waits
        for KServe to serve its step (no controller here, so none ever is: this is the steady
        cost of N rollouts in flight)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import kubernetes
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from e2e.controlplane import netns  # noqa: E402
from e2e.controlplane.cluster import build  # noqa: E402
from e2e.controlplane.kubernetes import Kubernetes  # noqa: E402
from e2e.controlplane.manifests import documents, dump, of_kind  # noqa: E402
from e2e.localstack.operator import OperatorProcess  # noqa: E402
from e2e.localstack.prometheus import PrometheusServer  # noqa: E402
from e2e.localstack.stack import OPERATOR, install_modelrollout, model_rollout  # noqa: E402
from modelrollout.adapters.isvc import STORAGE_URI  # noqa: E402
from harness.processes import cpu_seconds  # noqa: E402
from tests.integration.steady_traffic import SteadyTraffic  # noqa: E402

NAMESPACE = "bench"


def when(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def rollouts(kube: Kubernetes) -> list[dict]:
    return json.loads(kube.kubectl("get", "mro", "-n", NAMESPACE, "-o", "json").stdout)["items"]


def revision(name: str) -> dict:
    """The first revision KServe's Knative Service makes, with the model URI KServe stamps on it."""
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": f"{name}-predictor-00001", "namespace": NAMESPACE,
                         "annotations": {STORAGE_URI: f"pvc://models/{name}/v1"}},
            "spec": {"containers": [{"image": "kind.local/modelrollout-predictor"}]}}


def rolled_out(kube: Kubernetes, names: list[str]) -> None:
    """What KServe's controller writes once a revision is rolled out, through the status subresource."""
    custom = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(str(kube.kubeconfig)))
    for name in names:
        first = f"{name}-predictor-00001"
        custom.patch_namespaced_custom_object_status(
            "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", name,
            {"status": {"components": {"predictor": {"latestCreatedRevision": first, "latestReadyRevision": first,
                                                     "latestRolledoutRevision": first}}}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=500)
    parser.add_argument("--watch", type=float, default=60.0, help="seconds to measure after creating the rollouts")
    args = parser.parse_args()
    netns.isolate()
    root, workdir = build(), Path(tempfile.mkdtemp(prefix="bench-operator-"))
    with Kubernetes(workdir, root) as kube, SteadyTraffic("cancer", ["v1", "v2"]) as traffic, \
            PrometheusServer([traffic.target]) as prometheus:
        kube.apply(dump(c for c in of_kind(documents(root / "config/kserve/crd/full",
                                                     root / "config/knative-serving/core/300-resources"),
                                           "CustomResourceDefinition") if c["spec"].get("group")))
        kube.wait_established()
        install_modelrollout(kube)
        kube.kubectl("create", "namespace", NAMESPACE)
        objects = []
        for i in range(args.rollouts):
            name = f"model-{i:03d}"
            objects.append({"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
                            "metadata": {"name": name, "namespace": NAMESPACE,
                                         "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
                            "spec": {"predictor": {"model": {"modelFormat": {"name": "pytorch"},
                                                             "storageUri": f"pvc://models/{name}/v1"}}}})
        kube.apply(dump(objects + [revision(o["metadata"]["name"]) for o in objects]))
        rolled_out(kube, [o["metadata"]["name"] for o in objects])
        template = yaml.safe_load(model_rollout("v2", prometheus.url, interval="5s",
                                                steps=[{"weight": 10}, {"weight": 100}]))
        body = [{**template, "metadata": {"name": f"model-{i:03d}", "namespace": NAMESPACE},
                 "spec": {**template["spec"], "inferenceService": f"model-{i:03d}"}} for i in range(args.rollouts)]
        with OperatorProcess(kube.service_account_kubeconfig(*OPERATOR), workdir / "operator.log", resync=10,
                             namespace=NAMESPACE) as operator:
            t0, cpu0 = time.monotonic(), cpu_seconds(operator.proc.pid)
            reconciles0 = operator.metric("modelrollout_reconcile_duration_seconds_count")
            kube.apply(dump(body))
            lag: dict[str, float] = {}
            deadline = time.monotonic() + args.watch
            while time.monotonic() < deadline:
                for r in rollouts(kube):
                    s, name = r.get("status") or {}, r["metadata"]["name"]
                    if s.get("stepRequestedAt") and name not in lag:
                        lag[name] = (when(s["stepRequestedAt"]) - when(r["metadata"]["creationTimestamp"])).total_seconds()
                time.sleep(0.5)
            wall, cpu = time.monotonic() - t0, cpu_seconds(operator.proc.pid) - cpu0
            reconciles = operator.metric("modelrollout_reconcile_duration_seconds_count") - reconciles0
        lags = sorted(lag.values())
        q = statistics.quantiles(lags, n=100) if len(lags) > 1 else lags * 99
        print(f"{args.rollouts} rollouts on kube-apiserver {json.loads(kube.kubectl('version', '-o', 'json').stdout)['serverVersion']['gitVersion']}, "
              f"{wall:.0f}s watched")
        print(f"creation to first step asked: {len(lags)}/{args.rollouts}   p50 {q[49]:.1f} s   p95 {q[94]:.1f} s   "
              f"max {lags[-1]:.1f} s")
        print(f"operator CPU: {cpu:.1f} s for {reconciles:.0f} reconciles = {cpu / max(reconciles, 1) * 1000:.1f} ms per reconcile; "
              f"{cpu / wall:.2f} cores over the run (goal: under one)")


if __name__ == "__main__":
    main()
