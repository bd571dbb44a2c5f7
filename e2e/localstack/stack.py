"""Everything a rollout needs, on loopback: the real control plane (e2e/controlplane: Kubernetes,
Knative Serving, KServe), real predictor processes (one per model version, standing in for the
pods' containers), a real Prometheus scraping them every second, the operator (authenticated as
its ServiceAccount, so the shipped RBAC decides what it may do), and the traffic driver, which
routes by the split Knative or KServe wrote. Pieces start and stop independently, so scenarios can
stop Prometheus or kill the operator mid-rollout. Two stand-ins, for what has no pods here: the
gateway (gateway.py, the ingress for the operator's and the mirror's own requests) and the
kubelet's copy of the mirror's ConfigMap into the predictors' files (mirror_sync.py).
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from e2e.controlplane.cluster import ControlPlane
from e2e.controlplane.kubernetes import Namespaced, condition_true
from e2e.controlplane.manifests import dump
from e2e.controlplane.process import wait_for
from e2e.controlplane.routing import PlatformRoutes
from harness.processes import PredictorProcess

from .driver import TrafficDriver
from .gateway import Gateway
from .mirror_sync import MirrorSync
from .operator import OperatorProcess
from .prometheus import PrometheusServer

REPO = Path(__file__).resolve().parents[2]
VERSIONS = {
    "v1": REPO / "models/cancer/v1",
    "v2": REPO / "models/cancer/v2",
    "v3-errors": REPO / "tests/fixtures/models/cancer/v3-errors",   # fails on about 10% of inputs
    "v3-slow": REPO / "tests/fixtures/models/cancer/v3-slow",       # about 12 ms more per batch
    "v3-shifted": REPO / "tests/fixtures/models/cancer/v3-shifted",   # answers benign for most inputs
}


OPERATOR = ("modelrollout-system", "modelrollout-operator")     # the ServiceAccount manifests/ ships
MODE_ANNOTATION = {"serverless": "Serverless", "standard": "Standard"}


def uri_of(version: str) -> str:
    """Where the model version lives, as an InferenceService names it (a PVC, as on e2e/kind)."""
    return f"pvc://models/cancer/{version}"


TAG_ROUTING = "serving.kserve.io/enable-tag-routing"     # KServe gives each version an address of its own


def inference_service(name: str = "cancer", version: str = "v1", mode: str = "serverless", tag_routing: bool = False) -> str:
    annotations = {"serving.kserve.io/deploymentMode": MODE_ANNOTATION[mode], **({TAG_ROUTING: "true"} if tag_routing else {})}
    return yaml.safe_dump({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch",
                                         "storageUri": uri_of(version)}}}})


def kind_manifests(kube) -> list[dict]:
    """manifests/ as e2e/kind/overlay renders it (real kustomize, in kubectl): the images under
    kind.local/, which Knative's default config does not resolve against a registry."""
    return [d for d in yaml.safe_load_all(kube.kubectl("kustomize", str(REPO / "e2e/kind/overlay")).stdout) if d]


def install_modelrollout(kube) -> None:
    """What `kubectl apply -k e2e/kind/overlay` installs but the operator's Deployment: the CRD,
    namespace, ServiceAccount, RBAC, the admission policy on its InferenceService patches, and the
    runtimes. The operator runs as a local process."""
    kube.apply(dump(d for d in kind_manifests(kube) if d["kind"] != "Deployment"))
    kube.wait_established()


def isvc_ready(api: Namespaced, name: str = "cancer") -> bool:
    return condition_true(json.loads(api.kubectl("get", "isvc", name, "-o", "json").stdout))


def model_rollout(version: str, prometheus: str, mode: str = "serverless", steps: list[dict] | None = None,
                  interval: str = "4s", name: str = "cancer", autoscaling: dict | None = None,
                  progress_deadline: str = "2m", evaluation: dict | None = None, namespace_label: str = "",
                  access: dict | None = None, shadow: dict | None = None, **analysis) -> str:
    """A rollout with short timings for the local stack; analysis fields override the defaults.
    namespace_label: "" as the shared Prometheus scrapes loopback targets, which carry no namespace
    label; access: more of spec.analysis.prometheus (authorization, tlsConfig, headers)."""
    spec_analysis = {"prometheus": {"url": prometheus, "namespaceLabel": namespace_label, **(access or {})}, "window": "15s", "scrapeInterval": "1s",
                     "minRequests": 30, "maxErrorRate": 0.02,
                     "maxLatencyP99": "250ms", "compareToStable": True,
                     # millisecond latencies on a shared 2-core machine jitter: flag a canary only at 2x stable's p99
                     "latencyTolerance": 2.0,
                     "onInconclusive": {"after": "10m", "action": "pause"}, **analysis}
    return yaml.safe_dump({
        "apiVersion": "serving.modelrollout.io/v1alpha1", "kind": "ModelRollout", "metadata": {"name": name},
        "spec": {"inferenceService": name, "model": {"version": version, "storageUri": uri_of(version)},
                 "strategy": {"trafficMode": mode, "interval": interval, "progressDeadline": progress_deadline,
                              "steps": steps or [{"weight": 20}, {"weight": 50}, {"weight": 100}],
                              **({"shadow": shadow} if shadow else {})},
                 "analysis": spec_analysis,
                 "autoscaling": autoscaling or {"minReplicas": 1, "maxReplicas": 4, "metric": "concurrency", "target": 8},
                 **({"evaluation": evaluation} if evaluation else {})}})


class Predictors:
    """One predictor process per version, all serving model `cancer`, each with the mirror's file
    (--shadow_config) a pod mounts from ConfigMap modelrollout-shadow, empty: the mirror off."""

    def __init__(self, versions: list[str], logs: Path):
        self.shadow_files = [logs / f"shadow-{v}.yaml" for v in versions]
        for path in self.shadow_files:
            path.write_text("")
        self.processes = {v: PredictorProcess(VERSIONS[v], "--shadow_config", str(path),
                                              log_path=logs / f"predictor-{v}.log")
                          for v, path in zip(versions, self.shadow_files)}

    def __enter__(self) -> "Predictors":
        for p in self.processes.values():
            p.start()
        return self

    def backends(self) -> dict[str, tuple[str, str]]:
        return {uri_of(v): (v, p.http_url) for v, p in self.processes.items()}

    def targets(self) -> list[str]:
        return [p.http_url for p in self.processes.values()]

    def __exit__(self, *exc) -> None:
        for p in self.processes.values():
            p.terminate()


def new_namespace() -> str:
    return f"rollout-{os.urandom(3).hex()}"


class Rollout:
    """One ModelRollout's run on the shared control plane, in a namespace of its own: the
    InferenceService (KServe and Knative make it Ready), the operator watching that namespace as
    its ServiceAccount, the driver, and the gateway the operator's own requests go through, over
    shared predictors and Prometheus. tag_routing: KServe gives each version an address (the
    evaluation step needs it)."""

    def __init__(self, control_plane: ControlPlane, predictors: Predictors, prometheus: PrometheusServer,
                 workdir: Path | None = None, mode: str = "serverless", rate: float = 60.0, resync: float = 0.5,
                 tag_routing: bool = False, namespace: str | None = None):
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="localstack-"))
        self.control_plane, self.kube = control_plane, control_plane.kube
        self.predictors, self.prometheus, self.mode, self.resync = predictors, prometheus, mode, resync
        self.namespace = namespace or new_namespace()
        self.api = Namespaced(self.kube, self.namespace)
        self.operator: OperatorProcess | None = None
        self.driver: TrafficDriver | None = None
        self.rate, self.tag_routing = rate, tag_routing
        self.gateway: Gateway | None = None
        self._stack = contextlib.ExitStack()

    def start_operator(self, log_name: str = "operator.log") -> OperatorProcess:
        kubeconfig = self.kube.service_account_kubeconfig(*OPERATOR)
        self.operator = OperatorProcess(kubeconfig, self.dir / log_name, resync=self.resync, namespace=self.namespace).start()
        self._stack.callback(self.operator.stop)
        return self.operator

    def __enter__(self) -> "Rollout":
        install_modelrollout(self.kube)
        self.kube.kubectl("create", "namespace", self.namespace)
        self._stack.callback(self.kube.kubectl, "delete", "namespace", self.namespace, "--wait=false", check=False)
        self.kube.model_volume(self.namespace)
        self.apply(inference_service(mode=self.mode, tag_routing=self.tag_routing))
        wait_for(lambda: isvc_ready(self.api), 90, f"InferenceService {self.namespace}/cancer to be Ready")
        self.start_operator()
        routes = PlatformRoutes(self.kube.kubeconfig, "cancer", self.namespace)
        self.driver = TrafficDriver(routes.split, self.predictors.backends(), rate=self.rate)
        self._stack.enter_context(self.driver)
        self.gateway = self._stack.enter_context(Gateway(routes.split, self.predictors.backends()))
        self.mirror_sync = self._stack.enter_context(
            MirrorSync(self.kube.kubeconfig, self.namespace, "cancer", self.predictors.shadow_files))
        return self

    def apply(self, manifest: str) -> None:
        self.api.kubectl("apply", "-f", "-", input=manifest)

    def patch(self, spec: str) -> None:
        self.api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", spec)

    def plugin(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`kubectl modelrollout ARGS -n NAMESPACE` as a user runs it: the real kubectl finds the
        plugin (pyproject's console script) on PATH and passes it what follows its name."""
        env = {**os.environ, "KUBECONFIG": str(self.kube.kubeconfig),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        return subprocess.run([str(self.kube.bin / "kubectl"), "modelrollout", *args, "-n", self.namespace],
                              env=env, capture_output=True, text=True, timeout=timeout)

    def report(self) -> str:
        """What a failed scenario needs to be understood: the rollout, what the driver and each
        predictor counted, its InferenceService's predictor spec and status, and the operator's
        last log lines."""
        rollout = self.kube.get("mro", "cancer", namespace=self.namespace) or {}
        isvc = self.kube.get("isvc", "cancer", namespace=self.namespace) or {}
        log = self.operator.log_path.read_text(errors="replace").splitlines()[-40:] if self.operator else []
        counted = [line for p in self.predictors.processes.values() for line in p.metrics().splitlines()
                   if line.startswith("predictor_predictions_total")
                   or line.startswith("predictor_requests_total") and 'code="200"' in line]
        return "\n".join([f"rollout status: {json.dumps(rollout.get('status'), indent=1)}",
                          f"driver: {self.driver.report() if self.driver else None}", "predictors:", *counted,
                          f"isvc predictor: {json.dumps((isvc.get('spec') or {}).get('predictor'))}",
                          f"isvc status: {json.dumps(((isvc.get('status') or {}).get('components') or {}).get('predictor'))}",
                          "operator log:", *log])

    def __exit__(self, *exc) -> None:
        self._stack.close()
