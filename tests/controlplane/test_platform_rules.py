"""Rules of KServe and Knative that the operator and the packaging must respect, shown by the
platform's own webhooks and controllers on the real control plane (operator-review A2, A3;
packaging-review C1). Each refusal comes with the nearest spec that is accepted, so the test
pins the rule itself rather than some other mistake in the object."""
import copy
import json
from pathlib import Path

import pytest

from e2e.controlplane.process import wait_for

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "manifests/runtime/clusterservingruntime.yaml"
MODEL = {"modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch", "storageUri": "pvc://models/cancer/v1"}


@pytest.fixture(scope="module")
def runtime(control_plane):
    control_plane.kube.apply(RUNTIME.read_text())
    return control_plane.kube


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


def test_kserve_accepts_a_standard_mode_canary_of_name_model_and_traffic(runtime, namespace):
    assert create(runtime, namespace, isvc("cancer", "Standard", canary=[canary_entry()])) is None


@pytest.mark.parametrize("field,value", [("maxReplicas", 5), ("scaleMetric", "cpu"), ("scaleTarget", 70)])
def test_kserve_refuses_autoscaling_fields_on_a_standard_mode_canary(runtime, namespace, field, value):
    # KServe runs canaries at fixed replicas (inference_service_validation.go validateCanarySpecs)
    error = create(runtime, namespace, isvc("cancer", "Standard", canary=[canary_entry(**{field: value})]))
    assert error is not None and "denied the request" in error and field in error, error


def test_kserve_refuses_a_canary_with_more_min_replicas_than_stable(runtime, namespace):
    obj = isvc("cancer", "Standard", predictor={"minReplicas": 1}, canary=[canary_entry(minReplicas=2)])
    error = create(runtime, namespace, obj)
    assert error is not None and "minReplicas" in error, error
    obj["spec"]["canary"][0]["predictor"]["minReplicas"] = 1
    assert create(runtime, namespace, obj) is None


@pytest.mark.parametrize("name", ["1-2-3", "V2"])
def test_kserve_refuses_a_canary_name_that_is_no_dns_label_starting_with_a_letter(runtime, namespace, name):
    entry = canary_entry()
    entry["predictor"]["name"] = name
    error = create(runtime, namespace, isvc("cancer", "Standard", canary=[entry]))
    assert error is not None, f"KServe accepted the canary name {name!r}"


def test_kserve_refuses_a_canary_on_a_serverless_inference_service(runtime, namespace):
    error = create(runtime, namespace, isvc("cancer", "Serverless", canary=[canary_entry()]))
    assert error is not None and "canary" in error.lower(), error


@pytest.mark.parametrize("metric,accepted", [("cpu", False), ("memory", False), ("concurrency", True), ("rps", True)])
def test_kserve_accepts_only_knative_metrics_on_a_serverless_inference_service(runtime, namespace, metric, accepted):
    error = create(runtime, namespace, isvc("cancer", "Serverless", predictor={"scaleMetric": metric, "scaleTarget": 10}))
    if accepted:
        assert error is None, error
    else:
        assert error is not None and f"[{metric}] is not a supported metric" in error, error


def knative_service(ports: list[dict]) -> dict:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "ports"},
            "spec": {"template": {"spec": {"containers": [{"image": "kind.local/predictor:v1", "ports": ports}]}}}}


def test_knative_refuses_a_revision_with_two_container_ports(runtime, namespace):
    one = [{"name": "http1", "containerPort": 8080}]
    assert create(runtime, namespace, knative_service(one)) is None
    error = create(runtime, namespace, knative_service(one + [{"name": "h2c", "containerPort": 8081}]))
    assert error is not None and "port" in error.lower(), error


def ready_or_reason(kube, namespace: str, name: str):
    obj = kube.get("isvc", name, namespace=namespace) or {}
    conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    ready = conditions.get("Ready", {})
    if ready.get("status") == "True":
        return "Ready"
    failed = [c for c in conditions.values() if c.get("status") == "False" and c.get("message")]
    return failed[0]["message"] if failed else None


@pytest.mark.xfail(strict=True, reason="packaging-review C1 (issue 12): the shipped runtime declares REST and gRPC "
                                       "ports and Knative refuses a revision with two")
def test_the_shipped_runtime_serves_a_serverless_inference_service(runtime, namespace):
    assert create(runtime, namespace, isvc("cancer", "Serverless"), dry_run=False) is None
    outcome = wait_for(lambda: ready_or_reason(runtime, namespace, "cancer"), 90, "the InferenceService to settle")
    assert outcome == "Ready", outcome
