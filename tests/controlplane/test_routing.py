"""The traffic driver's routing reads what the platform wrote: Knative's KIngress split (serverless)
and KServe's HTTPRoute (standard), on the real control plane, after edits a user makes by hand."""
import json

import pytest

from e2e.controlplane.process import wait_for
from e2e.controlplane.routing import PlatformRoutes
from modelrollout.adapters.autoscaling import stable_scale
from modelrollout.adapters.isvc import TAG_ROUTING
from modelrollout.adapters.serverless import ServerlessRouter
from modelrollout.planner import Traffic
from modelrollout.spec import AutoscalingSpec

from .inference_services import MODEL, canary_entry, create, isvc, wait_ready

V1, V2 = MODEL["storageUri"], "pvc://models/cancer/v2"


@pytest.fixture
def routes(runtime, namespace):
    runtime.model_volume(namespace)
    return PlatformRoutes(runtime.kubeconfig, "cancer", namespace)


def test_a_serverless_canary_split_is_the_one_knative_wrote(runtime, namespace, routes):
    assert create(runtime, namespace, isvc("cancer", "Serverless"), dry_run=False) is None
    wait_for(lambda: routes.split() == [(V1, 100)], 90, "the first revision to take all traffic")
    patch = {"spec": {"predictor": {"canaryTrafficPercent": 20, "model": {"storageUri": V2}}}}
    runtime.kubectl("patch", "isvc", "cancer", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    wait_for(lambda: sorted(routes.split()) == sorted([(V2, 20), (V1, 80)]), 90, "Knative to split 20/80")
    # KServe's status comes to say the same: the rolled-out revision keeps 80%, the latest ready one 20%
    def status_agrees() -> bool:
        predictor = runtime.get("isvc", "cancer", namespace=namespace)["status"]["components"]["predictor"]
        shares = {t["revisionName"]: t["percent"] for t in predictor.get("traffic", [])}
        return shares == {predictor.get("latestRolledoutRevision"): 80, predictor.get("latestReadyRevision"): 20}
    wait_for(status_agrees, 60, "KServe's status to report the 80/20 split")


def test_kserve_v0_20_routes_no_standard_mode_traffic_to_a_ready_canary(runtime, namespace, routes):
    # KServe v0.20.0 deploys the canary and reports its trafficPercent, but its HTTPRoute keeps one
    # backend: stable. An operator must check the route, not the canary status (issue 10).
    obj = isvc("cancer", "Standard", canary=[canary_entry()])
    assert create(runtime, namespace, obj, dry_run=False) is None
    wait_ready(runtime, namespace, "cancer")
    status = runtime.get("isvc", "cancer", namespace=namespace)["status"]
    assert status["canaryStatuses"] == [{"name": "v2", "ready": True, "trafficPercent": 20,
                                         "modelStatus": status["canaryStatuses"][0]["modelStatus"]}]
    assert routes.split() == [(V1, 100)]


def test_the_status_url_host_is_one_the_kingress_routes(runtime, namespace, routes):
    """packaging-review C5: with no Istio (disableIstioVirtualHost, as e2e/kind configures KServe),
    the host in the InferenceService's status.url is one Knative's KIngress routes, which is what
    Kourier serves; the kind suite sends its requests with that host."""
    assert create(runtime, namespace, isvc("cancer", "Serverless"), dry_run=False) is None
    wait_ready(runtime, namespace, "cancer")
    host = runtime.get("isvc", "cancer", namespace=namespace)["status"]["url"].split("://", 1)[1]
    kingress = runtime.get("kingress", "cancer-predictor", namespace=namespace)
    routed = {h for rule in kingress["spec"]["rules"] for h in rule["hosts"]}
    assert host in routed, (host, routed)
    assert host != f"cancer-{namespace}.example.com"       # KServe's Istio-only host, which nothing routes here


def _observed(runtime, namespace):
    """The real InferenceService, and the revisions its status names, as the operator reads them."""
    isvc = runtime.get("isvc", "cancer", namespace=namespace)
    return isvc, {(kind, name): runtime.get(kind, name, namespace=namespace) for kind, name in ServerlessRouter().observe(isvc)}


def _addresses(runtime, namespace, traffic):
    """What the operator's router makes of the real InferenceService and revisions."""
    isvc, observed = _observed(runtime, namespace)
    return ServerlessRouter().addresses(isvc, traffic, observed)


EVALUATING = Traffic("v1", V1, "v2", V2, 0, evaluating=True)


def test_the_evaluation_step_reaches_each_version_at_its_own_tagged_host_with_no_traffic_moved(runtime, namespace, routes):
    """The operator's evaluation step writes the candidate at canaryTrafficPercent 0 (the router's
    own patch); with KServe's tag routing each version gets a URL whose host Knative's KIngress
    routes to that version alone, while the service's own host still sends everything to stable."""
    obj = isvc("cancer", "Serverless")
    obj["metadata"]["annotations"][TAG_ROUTING] = "true"
    assert create(runtime, namespace, obj, dry_run=False) is None
    wait_ready(runtime, namespace, "cancer")
    current, observed = _observed(runtime, namespace)
    patch = ServerlessRouter().patch(current, EVALUATING, stable_scale(AutoscalingSpec()), observed)
    runtime.kubectl("patch", "isvc", "cancer", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    found = {}
    wait_for(lambda: found.update(zip(("urls", "missing"), _addresses(runtime, namespace, EVALUATING)))
             or found["urls"], 90, f"both versions' addresses (last: {found.get('missing')})")
    urls = found["urls"]
    hosts = {role: url.split("://", 1)[1] for role, url in urls.items()}
    assert hosts["candidate"].startswith("latest-") and hosts["stable"].startswith("prev-"), hosts
    assert routes.split(hosts["candidate"]) == [(V2, 100)]
    assert routes.split(hosts["stable"]) == [(V1, 100)]
    assert routes.split() == [(V1, 100)]                   # users' traffic does not move


def test_without_tag_routing_the_candidate_at_zero_percent_has_no_address(runtime, namespace, routes):
    assert create(runtime, namespace, isvc("cancer", "Serverless"), dry_run=False) is None
    wait_ready(runtime, namespace, "cancer")
    current, observed = _observed(runtime, namespace)
    patch = ServerlessRouter().patch(current, EVALUATING, stable_scale(AutoscalingSpec()), observed)
    runtime.kubectl("patch", "isvc", "cancer", "-n", namespace, "--type=merge", "-p", json.dumps(patch))

    def created() -> bool:
        predictor = runtime.get("isvc", "cancer", namespace=namespace)["status"]["components"]["predictor"]
        return predictor.get("latestReadyRevision") == predictor.get("latestCreatedRevision") != predictor.get("latestRolledoutRevision")
    wait_for(created, 90, "the candidate's revision to be ready")
    urls, missing = _addresses(runtime, namespace, EVALUATING)
    assert urls is None and TAG_ROUTING in missing
