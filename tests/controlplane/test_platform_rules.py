"""Rules of KServe and Knative that the operator and the packaging must respect, shown by the
platform's own webhooks and controllers on the real control plane (operator-review A2, A3;
packaging-review C1, C2). Each refusal comes with the nearest spec that is accepted, so the test
pins the rule itself rather than some other mistake in the object."""
import json
from pathlib import Path

import pytest

from e2e.controlplane.kubernetes import condition_true
from e2e.controlplane.manifests import documents, of_kind
from e2e.controlplane.process import wait_for
from e2e.localstack.stack import kind_manifests
from tests.packaging.rendered import images

from .inference_services import canary_entry, create, isvc, wait_ready

REPO = Path(__file__).resolve().parents[2]


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


def knative_service(ports: list[dict], image: str = "kind.local/predictor:v1", name: str = "ports") -> dict:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": image, "ports": ports}]}}}}


def test_knative_refuses_a_revision_with_two_container_ports(runtime, namespace):
    one = [{"name": "http1", "containerPort": 8080}]
    assert create(runtime, namespace, knative_service(one)) is None
    error = create(runtime, namespace, knative_service(one + [{"name": "h2c", "containerPort": 8081}]))
    assert error is not None and "port" in error.lower(), error


@pytest.mark.parametrize("runtime_name", ["modelrollout-torch", "modelrollout-torch-grpc"])
def test_the_shipped_runtimes_serve_a_serverless_inference_service(runtime, namespace, runtime_name):
    # packaging-review C1: one declared port per runtime, or Knative refuses the revision
    runtime.model_volume(namespace)
    obj = isvc("cancer", "Serverless")
    obj["spec"]["predictor"]["model"]["runtime"] = runtime_name
    assert create(runtime, namespace, obj, dry_run=False) is None
    wait_ready(runtime, namespace, "cancer")


def test_knative_resolves_the_shipped_image_to_a_digest_and_skips_the_kind_suites(runtime, namespace):
    """packaging-review C2, with Knative's default config-deployment: an image in a real registry
    (ghcr.io, as shipped) is resolved to a digest before the revision may start, so an image that
    exists only on the nodes never starts; the kind overlay's kind.local/ image is not resolved."""
    (shipped,), (kind,) = (images(of_kind(docs, "ClusterServingRuntime"))
                           for docs in (documents(REPO / "manifests/runtime"), kind_manifests(runtime)))
    assert shipped.startswith("ghcr.io/") and kind.startswith("kind.local/")
    port = [{"name": "http1", "containerPort": 8080}]
    for name, image in (("shipped", shipped), ("kind", kind)):
        assert create(runtime, namespace, knative_service(port, image, name), dry_run=False) is None

    def revision(name):
        revisions = (runtime.get("revisions", "-l", f"serving.knative.dev/service={name}", namespace=namespace) or {}).get("items")
        return revisions[0] if revisions else None
    unresolved = wait_for(lambda: (lambda r: r if r and any("Unable to fetch image" in c.get("message", "")
                                                                for c in r["status"].get("conditions", [])) else None)(
        revision("shipped")), 60, "Knative to try resolving the shipped image", 0.5)
    assert shipped in json.dumps(unresolved["status"]["conditions"])
    wait_for(lambda: condition_true(revision("kind")), 60, "the kind.local revision to be Ready", 0.5)


def test_the_example_inference_service_becomes_ready(runtime, namespace):
    """manifests/examples' InferenceService on the real KServe and Knative: KServe builds its Knative
    Service from our runtime and Knative runs the revision (accepted at apply time is not enough)."""
    runtime.model_volume(namespace)
    examples = of_kind(documents(REPO / "manifests/examples"), "InferenceService")
    assert examples
    for obj in examples:
        assert create(runtime, namespace, obj, dry_run=False) is None
        wait_ready(runtime, namespace, obj["metadata"]["name"])
