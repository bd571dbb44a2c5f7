"""The ClusterRole grants exactly the API calls the operator makes: derived from the emulated
API server's audit log while the real operator (kopf and the reconciler) takes a rollout through
start, steps, abort and deletion. A grant nobody uses, or a call nobody granted, fails."""
import json

import pytest

from e2e.localstack.apiserver import ApiServer
from e2e.localstack.observe import status_of, wait_for
from e2e.localstack.operator import OperatorProcess
from e2e.localstack.stack import inference_service, model_rollout

from .rendered import kustomized, rbac_rules, rendered_chart

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def operator_calls(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rbac")
    with ApiServer(workdir) as api:
        api.kubectl("apply", "-f", "-", input=inference_service())
        with OperatorProcess(api.kubeconfig, workdir / "operator.log"):
            # Prometheus unreachable on purpose: the analysis path still runs (Inconclusive)
            api.kubectl("apply", "-f", "-", input=model_rollout("v2", "http://127.0.0.1:9", interval="1s",
                                                              steps=[{"weight": 10}, {"weight": 100}]))
            wait_for(lambda: (status_of(api).get("lastAnalysis") or {}).get("verdict") == "Inconclusive", what="an analysis")
            api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"abort":true}}')
            wait_for(lambda: status_of(api).get("phase") == "RolledBack", what="rollback")
            api.kubectl("delete", "mro", "cancer", "--timeout=30s")
        calls = set()
        for line in api.audit_log.read_text().splitlines():
            entry = json.loads(line)
            if entry["resource"] and not entry["agent"].startswith("kubectl"):   # discovery and the test's own calls aside
                resource = entry["resource"] + (f"/{entry['subresource']}" if entry["subresource"] else "")
                calls.add((entry["group"], resource, entry["verb"]))
    return calls


def test_the_operator_made_the_calls_a_rollout_needs(operator_calls):
    for call in [("serving.modelrollout.io", "modelrollouts", "watch"), ("serving.modelrollout.io", "modelrollouts/status", "patch"),
                 ("serving.kserve.io", "inferenceservices", "patch"), ("events.k8s.io", "events", "create")]:
        assert call in operator_calls


@pytest.mark.parametrize("source", ["manifests", "chart"])
def test_the_cluster_role_grants_exactly_those_calls(operator_calls, source):
    granted = rbac_rules(kustomized("manifests") if source == "manifests" else rendered_chart())
    assert granted - operator_calls == set(), "granted but never used"
    assert operator_calls - granted == set(), "used but not granted"
