"""How long one reconcile takes with many ModelRollouts present: `python bench/operator_reconcile.py [--rollouts 100]`.

Starts the emulated API server, creates N InferenceServices and N ModelRollouts, then times the
operator's Reconciler (the same object the kopf handlers call) against it over HTTP:
  start   the first reconcile of each rollout: read, plan, status write, event, two InferenceService patches
  steady  a reconcile with nothing to do: two reads, no writes (what every resync costs)
The operator's CPU per reconcile is printed apart from wall time: the emulated API server
(kmock) answers a GET in tens of milliseconds, far slower than a real one, and dominates wall time.
Analysis is not due (the first step holds an hour), so no Prometheus is involved; the
integration tests report analysis time in modelrollout_analysis_duration_seconds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from e2e.localstack.apiserver import ApiServer  # noqa: E402
from modelrollout.adapters.kube import GROUP, ISVC, PLURAL, VERSION, KubeApi  # noqa: E402
from modelrollout.metrics import OperatorMetrics  # noqa: E402
from modelrollout.reconcile import Reconciler  # noqa: E402


def not_due(*_):
    raise AssertionError("analysis should not be due in this benchmark")


def percentiles(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1000:6.1f} ms   p95 {q[94] * 1000:6.1f} ms   max {max(samples) * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=100)
    args = parser.parse_args()
    example = yaml.safe_load((ROOT / "crds/examples/cancer-serverless.yaml").read_text())
    example["spec"]["strategy"]["steps"][0]["hold"] = "1h"
    with ApiServer() as api:
        os.environ["KUBECONFIG"] = str(api.kubeconfig)
        kube = KubeApi.from_environment()
        for i in range(args.rollouts):
            name = f"model-{i:03d}"
            kube.objects.create_namespaced_custom_object(*ISVC[:2], "default", ISVC[2], {
                "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": name},
                "spec": {"predictor": {"model": {"storageUri": f"pvc://models/{name}/v1"}}}})
            body = {**example, "metadata": {"name": name}, "spec": {**example["spec"], "inferenceService": name}}
            kube.objects.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
        # baseline: the two reads every reconcile makes, as bare HTTP GETs against the same server
        reads = []
        for i in range(args.rollouts):
            t0 = time.perf_counter()
            for path in (f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}/model-{i:03d}",
                         f"/apis/{ISVC[0]}/{ISVC[1]}/namespaces/default/{ISVC[2]}/model-{i:03d}"):
                urllib.request.urlopen(api.url + path).read()
            reads.append(time.perf_counter() - t0)
        print(f"bare   2 GETs x {args.rollouts}:  {percentiles(reads)}   (the API server's own cost)")
        reconcile = Reconciler(kube, not_due, OperatorMetrics())
        for label in ("start", "steady"):
            samples = []
            began, cpu = time.perf_counter(), time.process_time()
            for i in range(args.rollouts):
                t0 = time.perf_counter()
                reconcile("default", f"model-{i:03d}")
                samples.append(time.perf_counter() - t0)
            total, cpu = time.perf_counter() - began, time.process_time() - cpu
            print(f"{label:6s} {args.rollouts} rollouts: {percentiles(samples)}   whole pass {total:5.2f} s   "
                  f"operator CPU {cpu / args.rollouts * 1000:.1f} ms per reconcile")
        phases = {kube.get_rollout("default", f"model-{i:03d}")["status"]["phase"] for i in range(args.rollouts)}
        assert phases == {"Progressing"}, phases


if __name__ == "__main__":
    main()
