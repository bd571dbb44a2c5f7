"""Tier 3: a KServe user whose runtime is not ours. Stable and candidate are a plain V2 server
(no predictor_* series) behind Knative's real queue-proxy; the rollout's `knative` provider judges
them from queue-proxy's series, per revision, on the real control plane (KServe and Knative name
the revisions; the driver routes by the split Knative wrote)."""
import pytest

from e2e.controlplane.process import wait_for
from e2e.localstack.observe import events_of, phase_in, status_of
from e2e.localstack.prometheus import PrometheusServer
from e2e.localstack.runtime_pods import RuntimePods
from e2e.localstack.stack import Rollout, model_rollout, new_namespace

pytestmark = pytest.mark.e2e
STABLE, CANDIDATE = "cancer-predictor-00001", "cancer-predictor-00002"


@pytest.fixture
def runtime(control_plane, tmp_path, request):
    """candidate: plain_v2's arguments for v2 (stable v1 never fails)."""
    namespace = new_namespace()
    versions = {"v1": (STABLE, []), "v2": (CANDIDATE, request.param)}
    with RuntimePods(namespace, versions, tmp_path / "pods") as pods, PrometheusServer(pods.targets()) as prometheus, \
            Rollout(control_plane, pods, prometheus, tmp_path, namespace=namespace) as rollout:
        yield rollout
        print(rollout.report())


def knative_rollout(stack) -> str:
    return model_rollout("v2", stack.prometheus.url, metrics={"provider": "knative"}, minRequests=20,
                         namespace_label="namespace")


def ended(stack) -> dict:
    """The rollout's end, once KServe routes what its status says (the driver follows Knative's split)."""
    s = wait_for(phase_in(stack.api, "Promoted", "RolledBack", "Paused"), timeout=240, what="the rollout's end")
    if s["phase"] != "Paused":
        wait_for(lambda: status_of(stack.api).get("servingVerified"), timeout=120, what="stable serving all, verified")
    return s


def revisions_kserve_names(stack) -> set[str]:
    predictor = stack.kube.get("isvc", "cancer", namespace=stack.namespace)["status"]["components"]["predictor"]
    return {t["revisionName"] for t in predictor.get("traffic") or []}


@pytest.mark.parametrize("runtime", [[]], indirect=True)
def test_a_healthy_candidate_on_another_runtime_is_judged_by_queue_proxy_and_promoted(runtime):
    runtime.apply(knative_rollout(runtime))
    wait_for(lambda: (status_of(runtime.api).get("canaryWeight") or 0) > 0 and status_of(runtime.api).get("stepStartedAt"),
             timeout=120, what="the first step served")
    assert revisions_kserve_names(runtime) == {STABLE, CANDIDATE}      # the pods' labels are KServe's revisions
    s = ended(runtime)
    assert s["phase"] == "Promoted", s
    analysis = s["lastAnalysis"]
    assert "kn_serving_invocation_duration_seconds_count" in analysis["queries"]["canary_requests"]
    assert any("batch design effect" in lack for lack in analysis["notMeasured"])
    assert set(runtime.driver.landing(100)) == {"v2"}


@pytest.mark.parametrize("runtime", [["--fail-every", "4"]], indirect=True)
def test_a_candidate_failing_a_quarter_of_requests_is_rolled_back_on_queue_proxys_5xx(runtime):
    runtime.apply(knative_rollout(runtime))
    s = ended(runtime)
    assert s["phase"] == "RolledBack" and "error rate" in s["message"], s
    assert ("Warning", "RolledBack") in [(e["type"], e["reason"]) for e in events_of(runtime.api, "cancer")]
    assert set(runtime.driver.landing(100)) == {"v1"}
