"""`kubectl apply -k ... --dry-run=client` with real kubectl. Client-side dry-run still maps every
kind through API discovery, so kubectl talks to the emulated API server, which knows the built-in
kinds, our CRD, and KServe's and the Prometheus Operator's kinds; nothing is created."""
import json

import pytest

from e2e.localstack.apiserver import ApiServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with ApiServer(tmp_path_factory.mktemp("apiserver")) as server:
        yield server


@pytest.mark.parametrize("directory,expected", [
    ("manifests", {"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                   "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ClusterServingRuntime"}),
    ("manifests/monitoring", {"ConfigMap", "PodMonitor", "ServiceMonitor"}),
    ("manifests/examples", {"Namespace", "InferenceService", "ModelRollout"}),
])
def test_apply_k_dry_run_client(api, directory, expected):
    result = api.kubectl("apply", "-k", directory, "--dry-run=client", "-o", "json", check=False)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    kinds = {item["kind"] for item in listed.get("items", [listed])}
    assert kinds == expected
    assert json.loads(api.kubectl("get", "deployments", "-A", "-o", "json").stdout)["items"] == []  # nothing created
