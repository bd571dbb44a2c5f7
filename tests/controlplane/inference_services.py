"""Helpers for tests on the real control plane: InferenceServices in either mode, created (or
dry-run) through every webhook, and how they settle."""
import copy
import json
import time

from e2e.controlplane.kubernetes import condition_true

MODEL = {"modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch", "storageUri": "pvc://models/cancer/v1"}


def isvc(name: str, mode: str, predictor: dict | None = None, canary: list | None = None) -> dict:
    obj = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
           "metadata": {"name": name, "annotations": {"serving.kserve.io/deploymentMode": mode}},
           "spec": {"predictor": {"model": copy.deepcopy(MODEL), **(predictor or {})}}}
    if canary is not None:
        obj["spec"]["canary"] = canary
    return obj


def create(kube, namespace: str, obj: dict, dry_run: bool = True) -> str | None:
    """None if the apiserver (with every webhook) accepts obj, else its error message."""
    args = ["create", "-n", namespace, "-f", "-"] + (["--dry-run=server"] if dry_run else [])
    result = kube.kubectl(*args, input=json.dumps(obj), check=False)
    return None if result.returncode == 0 else result.stderr


def canary_entry(**scale) -> dict:
    return {"trafficPercent": 20, "predictor": {"name": "v2", "model": {**MODEL, "storageUri": "pvc://models/cancer/v2"},
                                                 **scale}}


def wait_ready(kube, namespace: str, name: str, timeout: float = 90.0) -> None:
    """Until KServe calls the InferenceService Ready; on timeout, fail with the conditions that
    were False at the end (they are often transient on the way to Ready, so only then)."""
    deadline = time.monotonic() + timeout
    while True:
        obj = kube.get("isvc", name, namespace=namespace) or {}
        if condition_true(obj):
            return
        conditions = obj.get("status", {}).get("conditions", [])
        if time.monotonic() > deadline:
            raise AssertionError(f"InferenceService {namespace}/{name} not Ready after {timeout}s: "
                                 + "; ".join(f"{c['type']}: {c.get('message', '')}" for c in conditions if c["status"] == "False"))
        time.sleep(0.5)
