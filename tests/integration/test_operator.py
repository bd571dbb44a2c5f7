"""The operator as a real process under kopf, authenticated as its ServiceAccount (the shipped
RBAC decides what it may do), against the real control plane (KServe's webhooks and controller
take every patch), driven by real kubectl, with a real Prometheus scraping steady healthy
predictor series. Each test has a namespace of its own, which its operator watches."""
import pytest

from e2e.controlplane.kubernetes import Namespaced, condition_true
from e2e.controlplane.process import wait_for
from e2e.controlplane.routing import PlatformRoutes
from e2e.localstack.observe import Recorder, events_of, get, status_of
from e2e.localstack.operator import OperatorProcess
from e2e.localstack.prometheus import PrometheusServer
from e2e.localstack.stack import OPERATOR, inference_service, install_modelrollout, model_rollout, uri_of

from .steady_traffic import SteadyTraffic

pytestmark = pytest.mark.integration
V1, V2 = uri_of("v1"), uri_of("v2")    # no predictors run here: Prometheus scrapes synthetic series


def isvc(name, uri, mode="serverless"):
    return inference_service(name, "v1" if uri == V1 else "v2", mode)


SCALE = {"serverless": {"minReplicas": 2, "maxReplicas": 10, "metric": "concurrency", "target": 8},
         "standard": {"minReplicas": 2, "maxReplicas": 10, "metric": "cpu", "target": 70}}


def rollout(name, version, uri, prometheus, mode="serverless", steps=None, **analysis):
    assert uri == uri_of(version)
    return model_rollout(version, prometheus, mode, steps or [{"weight": 10}, {"weight": 40}, {"weight": 100}],
                         interval="2s", name=name, autoscaling=SCALE[mode], **{"window": "10s", "scrapeInterval": "1s", "minRequests": 50,
                                                                                   **analysis})


@pytest.fixture(scope="module")
def prometheus():
    with SteadyTraffic("cancer", ["v1", "v2"]) as traffic, PrometheusServer([traffic.target]) as prom:
        yield prom


@pytest.fixture
def api(control_plane, namespace):
    install_modelrollout(control_plane.kube)
    control_plane.kube.model_volume(namespace)
    return Namespaced(control_plane.kube, namespace)


def operator_process(api, log) -> OperatorProcess:
    return OperatorProcess(api.kube.service_account_kubeconfig(*OPERATOR), log, namespace=api.namespace)


@pytest.fixture
def operator(api, tmp_path):
    with operator_process(api, tmp_path / "operator.log") as op:
        yield op


status = status_of


def canary_of(obj: dict, mode: str) -> tuple[int, dict | None]:
    """(canary weight, the canary's template) as the InferenceService says."""
    spec = obj["spec"]
    if mode == "serverless":
        pct = spec["predictor"].get("canaryTrafficPercent")
        return (pct or 0, {k: v for k, v in spec["predictor"].items() if k != "canaryTrafficPercent"}) if pct else (0, None)
    entries = spec.get("canary") or []
    return (entries[0]["trafficPercent"], entries[0]["predictor"]) if entries else (0, None)


@pytest.mark.parametrize("mode", ["serverless"])
def test_a_healthy_rollout_moves_weights_in_order_and_promotes(api, operator, prometheus, mode):
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1, mode))
    watch = Recorder(api, "isvc", "cancer")
    api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url, mode))
    wait_for(lambda: status(api).get("phase") == "Promoted", timeout=90, what="promotion")
    # status is written first, then the InferenceService
    final = wait_for(lambda: (lambda o: o if canary_of(o, mode) == (0, None) else None)(get(api, "isvc", "cancer")),
                     what="the canary removed")
    history = watch.stop()

    seen = [canary_of(v, mode) for v in history]
    weights = [w for w, _ in seen]
    assert [w for i, w in enumerate(weights) if w and (i == 0 or weights[i - 1] != w)] == [10, 40], seen   # 100% = promotion
    templates = [t for w, t in seen if w]
    assert all(t == templates[0] for t in templates), templates     # a step changes only the weight: no new revision
    if mode == "serverless":                                         # sized once, for the 100% it takes when promoted
        assert templates[0]["maxReplicas"] == 10 and templates[0]["model"]["storageUri"] == V2
    else:                                                            # KServe's accepted shape: no autoscaling fields
        assert set(templates[0]) == {"name", "model"} and templates[0]["name"] == "v2"
    # promoted: the candidate serves everything, no canary left
    assert final["spec"]["predictor"]["model"]["storageUri"] == V2
    assert final["spec"]["predictor"]["maxReplicas"] == 10 and final["spec"]["predictor"]["scaleMetric"] == SCALE[mode]["metric"]
    assert "annotations" not in final["metadata"] or not any(
        k.startswith("serving.modelrollout.io/") for k in final["metadata"]["annotations"])

    s = status(api)
    assert s["stableVersion"] == "v2" and s.get("canaryVersion") is None and s["canaryWeight"] == 0
    assert s["observedGeneration"] == get(api, "mro", "cancer")["metadata"]["generation"]
    analysis = s["lastAnalysis"]
    assert analysis["verdict"] == "Pass" and analysis["requests"] >= 50 and "errorPValue" in analysis
    assert analysis["queries"]["canary_requests"].startswith("predictor_requests_total{")   # raw samples, per scrape
    # Ready once KServe routes v2 alone (kstatus: Current), Reconciling until then
    s = wait_for(lambda: (lambda s: s if s.get("servingVerified") else None)(status(api)), what="v2 routed alone")
    conditions = {c["type"]: c["status"] for c in s["conditions"]}
    assert conditions == {"Ready": "True", "Progressing": "False", "Paused": "False", "Degraded": "False",
                          "Reconciling": "False", "Stalled": "False"}
    reasons = [e["reason"] for e in events_of(api, "cancer")]
    started = reasons.index("RolloutStarted")          # once KServe had rolled out v1 (applied together)
    assert set(reasons[:started]) <= {"NotRolledOut"} and reasons.count("StepAdvanced") == 1 and reasons[-1] == "Promoted"
    assert operator.metric("modelrollout_decisions_total") >= 2          # one verdict per analysed step
    header, row = api.kubectl("get", "mro").stdout.splitlines()         # the CRD's printer columns
    assert header.split() == ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "VERDICT", "AGE"]
    assert row.split()[:3] == ["cancer", "Promoted", "v2"] and row.split()[-3:-1] == ["0", "Pass"]   # no canary
    described = api.kubectl("describe", "mro", "cancer").stdout         # status and the rollout's own Events
    assert "Phase:" in described and "RolloutStarted" in described and "Promoted" in described


def test_a_rollout_applied_with_its_inference_service_waits_until_kserve_has_rolled_it_out(api, operator, prometheus):
    """Until KServe has rolled out an InferenceService's first revision it sends the latest
    revision all traffic whatever canaryTrafficPercent says (ksvc_reconciler.go): a canary written
    then would take 100%. Applied together, the candidate's first share Knative routes is the step's."""
    routes = PlatformRoutes(api.kube.kubeconfig, "cancer", api.namespace)
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1) + "---\n"
                + rollout("cancer", "v2", V2, prometheus.url, steps=[{"weight": 10, "hold": "1h"}, {"weight": 100}]))
    first = wait_for(lambda: (lambda split: split if any(uri == V2 for uri, _ in split) else None)(routes.split()),
                     timeout=90, what="Knative to route to the candidate")
    assert sorted(first) == sorted([(V1, 90), (V2, 10)])
    # it did have to wait, as phase Waiting (the apiserver took the status: the event follows it), not as a failure
    assert ("Normal", "NotRolledOut") in [(e["type"], e["reason"]) for e in events_of(api, "cancer")]
    wait_for(lambda: status(api).get("stepStartedAt"), what="the 10% step served")


def test_a_restarted_operator_resumes_at_the_same_step(api, prometheus, tmp_path):
    steps = [{"weight": 10, "hold": "2s"}, {"weight": 50, "hold": "1h"}, {"weight": 100}]
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1))
    with operator_process(api, tmp_path / "first.log") as first:
        api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url, steps=steps))
        before = wait_for(lambda: (lambda s: s if s.get("currentStep") == 1 and s.get("stepStartedAt") else None)(
            status(api)), what="step 2 served")
        first.kill()
    events_before = len(events_of(api, "cancer"))
    with operator_process(api, tmp_path / "second.log") as second:
        wait_for(lambda: second.metric("modelrollout_reconcile_duration_seconds_count") >= 5, what="reconciles after restart")
        after = status(api)
    assert after["currentStep"] == 1 and after["canaryWeight"] == 50 and after["phase"] == "Progressing"
    assert after["stepStartedAt"] == before["stepStartedAt"] and after["stableVersion"] == "v1"
    assert canary_of(get(api, "isvc", "cancer"), "serverless")[0] == 50
    assert len(events_of(api, "cancer")) == events_before          # nothing re-announced, nothing redone


def test_manual_abort_and_retry_by_kubectl_patch(api, operator, prometheus):
    steps = [{"weight": 20, "hold": "1h"}, {"weight": 100}]
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1))
    api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url, steps=steps))
    # served, not only planned: the status is written before the InferenceService is patched, and
    # an abort before the candidate reaches the template has nothing to pin
    wait_for(lambda: status(api).get("canaryWeight") == 20 and status(api).get("stepStartedAt"), what="first step served")
    api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"abort":true}}')
    wait_for(lambda: status(api).get("phase") == "RolledBack", what="rollback")
    wait_for(lambda: (lambda p: p["canaryTrafficPercent"] == 0 and p["model"]["storageUri"] == V2)(
        get(api, "isvc", "cancer")["spec"]["predictor"]), what="stable pinned, the candidate's template untouched")
    api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"abort":false,"retry":1}}')
    wait_for(lambda: status(api).get("phase") == "Progressing" and status(api).get("canaryWeight") == 20, what="retry")
    api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"promote":"v2"}}')
    wait_for(lambda: status(api).get("phase") == "Promoted", what="promote now")
    wait_for(lambda: get(api, "isvc", "cancer")["spec"]["predictor"]["model"]["storageUri"] == V2, what="v2 serving")


def test_an_invalid_rollout_is_refused_by_the_server_naming_the_field(api, prometheus):
    bad = rollout("cancer", "v2", V2, prometheus.url, steps=[{"weight": 50}, {"weight": 20}])
    result = api.kubectl("apply", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert "spec.strategy.steps" in result.stderr and "weights must increase strictly" in result.stderr
    assert "the last step must have weight 100" in result.stderr


def test_a_missing_inference_service_is_reported_in_status(api, operator, prometheus):
    api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url))
    s = wait_for(lambda: (lambda s: s if s.get("phase") == "Failed" else None)(status(api)), what="Failed")
    assert "InferenceService 'cancer' not found" in s["message"]
    assert {c["type"]: c["status"] for c in s["conditions"]}["Degraded"] == "True"
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1))
    wait_for(lambda: status(api).get("phase") == "Progressing", what="recovery once the InferenceService exists")


def test_deleting_a_rollout_mid_canary_restores_stable(api, operator, prometheus):
    """operator-review A7: the operator's finalizer takes the canary out before the rollout goes."""
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1))
    api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url,
                                                  steps=[{"weight": 20, "hold": "1h"}, {"weight": 100}]))
    wait_for(lambda: canary_of(get(api, "isvc", "cancer"), "serverless")[0] == 20, what="the canary at 20%")
    api.kubectl("delete", "mro", "cancer", "--wait=true", "--timeout=60s")
    predictor = get(api, "isvc", "cancer")["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 0 and predictor["model"]["storageUri"] == V2   # KServe's rollback


def test_a_rollout_that_does_not_match_the_inference_service_mode_is_refused_before_any_write(api, operator, prometheus):
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1, "standard"))
    before = get(api, "isvc", "cancer")
    api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url))          # serverless
    s = wait_for(lambda: (lambda s: s if s.get("phase") == "Failed" else None)(status(api)), what="Failed")
    assert "trafficMode is serverless" in s["message"] and "runs in standard mode" in s["message"]
    assert [e["reason"] for e in events_of(api, "cancer")] == ["TrafficModeMismatch"]
    assert get(api, "isvc", "cancer")["metadata"]["generation"] == before["metadata"]["generation"]


def refuse_canaries(kube, namespace) -> str:
    """A ValidatingAdmissionPolicy, as a cluster admin would write one: no serverless canary in this namespace."""
    name = f"no-canary-{namespace}"
    kube.apply(f"""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {{apiGroups: [serving.kserve.io], apiVersions: ["*"], operations: [UPDATE], resources: [inferenceservices]}}
  validations:
    - expression: "!has(object.spec.predictor.canaryTrafficPercent) || object.spec.predictor.canaryTrafficPercent == 0"
      message: canaries are frozen in this namespace
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {namespace}}}}}
""")
    return name


def test_a_refused_patch_is_reported_and_the_rollout_carries_on_once_accepted(api, operator, prometheus):
    """operator-review B9: the apiserver's refusal reaches status, Events and metrics; status
    never claims the refused weight is served."""
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1))
    policy = refuse_canaries(api.kube, api.namespace)
    try:
        wait_for(lambda: "frozen" in api.kubectl("patch", "isvc", "cancer", "--type", "merge", "--dry-run=server", "-p",
                                                  '{"spec":{"predictor":{"canaryTrafficPercent":5}}}', check=False).stderr,
                 what="the policy in force")
        api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url))
        s = wait_for(lambda: (lambda s: s if s.get("routingError") else None)(status(api)), what="the refusal in status")
        degraded = {c["type"]: c for c in s["conditions"]}["Degraded"]
        assert (degraded["status"], degraded["reason"]) == ("True", "RoutingFailed")
        assert "canaries are frozen in this namespace" in degraded["message"]
        # the candidate goes in at 0% (the policy allows it); its weight is what was refused
        assert s.get("stepStartedAt") is None and not get(api, "isvc", "cancer")["spec"]["predictor"].get("canaryTrafficPercent")
        assert "RoutingFailed" in [e["reason"] for e in events_of(api, "cancer")]
        assert operator.metric("modelrollout_routing_errors_total") >= 1
    finally:
        api.kube.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, check=False)
    wait_for(lambda: status(api).get("phase") == "Promoted", timeout=120, what="promotion once the policy is gone")
    assert "RoutingRestored" in [e["reason"] for e in events_of(api, "cancer")]


def test_standard_mode_writes_what_kserve_accepts_and_fails_when_the_httproute_does_not_split(api, operator, prometheus):
    """operator-review A2, A6: KServe's webhook takes the canary entry, KServe deploys the canary
    and reports it ready, but KServe v0.20 puts no canary backend into the HTTPRoute, so the canary
    would get no traffic: the step's hold never starts, and at the progress deadline the rollout
    rolls back, naming the HTTPRoute."""
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1, "standard"))
    wait_for(lambda: condition_true(get(api, "isvc", "cancer")), timeout=90, what="stable ready")
    api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url, "standard", progress_deadline="20s"))
    entry = wait_for(lambda: (get(api, "isvc", "cancer")["spec"].get("canary") or [None])[0], what="the canary entry")
    # KServe's defaulting adds empty fields to the model; no autoscaling fields, a name that starts with a letter
    assert entry["trafficPercent"] == 10 and set(entry["predictor"]) == {"name", "model"}
    assert entry["predictor"]["name"] == "v2" and entry["predictor"]["model"]["storageUri"] == V2
    wait_for(lambda: any(c.get("name") == "v2" and c.get("ready") for c in
                         get(api, "isvc", "cancer").get("status", {}).get("canaryStatuses") or []),
             timeout=90, what="KServe to report the canary ready")
    assert status(api).get("stepStartedAt") is None                   # no traffic yet, so no hold
    s = wait_for(lambda: (lambda s: s if s.get("phase") == "RolledBack" else None)(status(api)), timeout=90,
                 what="the progress deadline")
    assert "progress deadline" in s["message"] and "HTTPRoute 'cancer' sends 0% to the canary" in s["message"]
    assert "lastAnalysis" not in s                                    # never judged on traffic it never got
    wait_for(lambda: not get(api, "isvc", "cancer")["spec"].get("canary"), what="the canary entry removed")


def test_two_operators_never_reconcile_together_and_the_second_takes_over(api, prometheus, tmp_path):
    """A second replica waits for the leader-election Lease; it reconciles only once the first is gone."""
    api.kubectl("apply", "-f", "-", input=isvc("cancer", V1))
    with operator_process(api, tmp_path / "first.log") as first:
        second = OperatorProcess(api.kube.service_account_kubeconfig(*OPERATOR), tmp_path / "second.log",
                                 namespace=api.namespace, leading=False).start()
        try:
            api.kubectl("apply", "-f", "-", input=rollout("cancer", "v2", V2, prometheus.url,
                                                          steps=[{"weight": 20, "hold": "1h"}, {"weight": 100}]))
            wait_for(lambda: status(api).get("stepStartedAt"), what="the first step served")
            assert first.metric("modelrollout_leader") == 1 and second.metric("modelrollout_leader") == 0
            assert second.metric("modelrollout_reconcile_duration_seconds_count") == 0
            first.stop()
            wait_for(lambda: second.metric("modelrollout_leader") == 1, timeout=60, what="the second to take the Lease")
            api.kubectl("patch", "mro", "cancer", "--type", "merge", "-p", '{"spec":{"promote":"v2"}}')
            wait_for(lambda: status(api).get("phase") == "Promoted", what="the second operator to act")
        finally:
            second.stop()
