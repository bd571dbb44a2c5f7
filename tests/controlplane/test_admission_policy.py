"""manifests/operator/admission-policy.yaml on the real apiserver: the operator's ServiceAccount
may move a rollout's fields of an InferenceService and nothing else (packaging review M5); other
users are not matched. The operator's own patches in every e2e and integration run go through it too."""
import json

import pytest
import yaml

from e2e.controlplane.kubernetes import Namespaced
from e2e.controlplane.process import wait_for
from e2e.localstack.stack import OPERATOR, inference_service, install_modelrollout, uri_of

pytestmark = pytest.mark.integration
REFUSED = "ValidatingAdmissionPolicy 'modelrollout-operator-inferenceservice-fields'"


@pytest.fixture(scope="module")
def operator_kubeconfig(control_plane):
    install_modelrollout(control_plane.kube)
    return control_plane.kube.service_account_kubeconfig(*OPERATOR)


@pytest.fixture
def isvc(kube, namespace, operator_kubeconfig):
    """patch(body, as_operator=True) -> the CompletedProcess of a merge patch of InferenceService `cancer`."""
    kube.model_volume(namespace)
    Namespaced(kube, namespace).kubectl("apply", "-f", "-", input=inference_service("cancer", "v1", "standard"))

    def patch(body: dict, as_operator: bool = True):
        return kube.kubectl("-n", namespace, "patch", "isvc", "cancer", "--type", "merge", "-p", json.dumps(body),
                            check=False, kubeconfig=operator_kubeconfig if as_operator else None)
    image = {"spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "evil.example/miner:1"}]}}}
    wait_for(lambda: REFUSED in patch(image).stderr, 30, "the policy to take effect", 0.5)
    return patch


def test_the_fields_a_rollout_moves_are_allowed(isvc):
    steps = [
        {"spec": {"predictor": {"canaryTrafficPercent": 20, "model": {"storageUri": uri_of("v2")},
                                "minReplicas": 1, "maxReplicas": 3, "scaleMetric": "concurrency", "scaleTarget": 8}}},
        {"spec": {"predictor": {"canaryTrafficPercent": None, "name": "v3", "model": {"storageUri": uri_of("v3")}}}},
        # standard mode: a canary entry carrying the main predictor's model but for storageUri
        {"spec": {"canary": [{"trafficPercent": 10, "predictor": {"name": "v2", "model": {
            "modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch", "storageUri": uri_of("v2")}}}]}},
        {"spec": {"canary": None}},
        # a runtime change (issue 24): the runtime image's tag and the predictor's requests and limits
        {"spec": {"predictor": {"canaryTrafficPercent": 20, "model": {"storageUri": uri_of("v2"), "runtimeVersion": "0.5.0",
                                                                      "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}}}}},
        {"spec": {"predictor": {"canaryTrafficPercent": None, "model": {"runtimeVersion": None, "resources": {"limits": {"cpu": "3"}}}}}},
        {"spec": {"canary": [{"trafficPercent": 10, "predictor": {"name": "v2", "model": {
            "modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch", "storageUri": uri_of("v2"),
            "runtimeVersion": "0.6.0", "resources": {"requests": {"memory": "3Gi"}, "limits": {"memory": "3Gi"}}}}}]}},
    ]
    for body in steps:
        result = isvc(body)
        assert result.returncode == 0, (body, result.stderr)


@pytest.mark.parametrize("name, body", [
    ("an image", {"spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "evil.example/x:1"}]}}}),
    ("a service account", {"spec": {"predictor": {"serviceAccountName": "default"}}}),
    ("another runtime", {"spec": {"predictor": {"model": {"runtime": "kserve-torchserve"}}}}),
    ("a transformer", {"spec": {"transformer": {"containers": [{"name": "t", "image": "evil.example/x:1"}]}}}),
    ("an annotation", {"metadata": {"annotations": {"serving.kserve.io/storage-initializer-image": "evil.example/x:1"}}}),
    ("a canary with its own runtime", {"spec": {"canary": [{"trafficPercent": 10, "predictor": {"name": "v2", "model": {
        "modelFormat": {"name": "pytorch"}, "runtime": "kserve-torchserve", "storageUri": uri_of("v3")}}}]}}),
    ("resource claims", {"spec": {"predictor": {"model": {"resources": {"claims": [{"name": "gpu"}]}}}}}),
    ("a canary with resource claims", {"spec": {"canary": [{"trafficPercent": 10, "predictor": {"name": "v2", "model": {
        "modelFormat": {"name": "pytorch"}, "runtime": "modelrollout-torch", "storageUri": uri_of("v2"),
        "resources": {"claims": [{"name": "gpu"}]}}}}]}}),
    ("a canary with containers", {"spec": {"canary": [{"trafficPercent": 10, "predictor": {
        "name": "v2", "containers": [{"name": "kserve-container", "image": "evil.example/x:1"}]}}]}}),
])
def test_anything_else_the_operator_sends_is_refused(isvc, name, body):
    result = isvc(body)
    assert result.returncode != 0 and REFUSED in result.stderr and "Forbidden" in result.stderr, (name, result.stderr)


def test_other_users_are_not_matched(isvc, kube, namespace):
    result = isvc({"metadata": {"annotations": {"team": "search"}}}, as_operator=False)
    assert result.returncode == 0, result.stderr
    assert kube.get("isvc", "cancer", namespace=namespace)["metadata"]["annotations"]["team"] == "search"


def test_the_policy_ships_in_manifests_and_names_the_shipped_service_account():
    from tests.packaging.rendered import kustomized
    docs = {d["kind"]: d for d in kustomized("manifests") if d["kind"].startswith("ValidatingAdmissionPolicy")}
    expression = docs["ValidatingAdmissionPolicy"]["spec"]["matchConditions"][0]["expression"]
    assert f"system:serviceaccount:{OPERATOR[0]}:{OPERATOR[1]}" in expression
    assert docs["ValidatingAdmissionPolicyBinding"]["spec"]["validationActions"] == ["Deny"]
    assert yaml.safe_dump(docs)          # both documents render
