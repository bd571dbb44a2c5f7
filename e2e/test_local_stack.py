"""Tier 3: the whole mission on loopback. The real control plane (Kubernetes, Knative Serving,
KServe) driven by real kubectl, real predictors for each version, a real Prometheus scraping them,
the operator as its ServiceAccount, and a driver sending V2 traffic by the split Knative wrote.
Each scenario waits on conditions.
"""
import pytest

from e2e.controlplane.kubernetes import condition_true
from e2e.controlplane.process import wait_for
from e2e.localstack.observe import Recorder, events_of, get, phase_in, status_of
from e2e.localstack.stack import REPO, Rollout, model_rollout, uri_of

pytestmark = pytest.mark.e2e
HOLDOUT = REPO / "models/cancer/holdout.json"


def phase_is(stack, *phases):
    return phase_in(stack.api, *phases)


def verdict_on(stack, version, *phases):
    """The status once its phase is one of `phases` for `version`, as candidate or as stable."""
    check = phase_is(stack, *phases)
    return lambda: (lambda s: s if s and version in (s.get("canaryVersion"), s.get("stableVersion")) else None)(check())


def weights_seen(history) -> list[int]:
    out = []
    for isvc in history:
        w = isvc["spec"]["predictor"].get("canaryTrafficPercent") or 0
        if not out or out[-1] != w:
            out.append(w)
    return out


def isvc_serves(stack, version):
    def check():
        p = get(stack.api, "isvc", "cancer")["spec"]["predictor"]
        return p["model"]["storageUri"] == uri_of(version) and p.get("canaryTrafficPercent") is None
    return check


def stable_pinned(stack, candidate):
    """KServe's rollback: the candidate's template stays, at 0%; the last rolled-out revision serves."""
    def check():
        p = get(stack.api, "isvc", "cancer")["spec"]["predictor"]
        return p["model"]["storageUri"] == uri_of(candidate) and p.get("canaryTrafficPercent") == 0
    return check


# the drift gate on: a healthy candidate's predictions pass it (v1 and v2 predict alike)
DRIFT = {"predictionDrift": {"minPredictions": 40}}


def test_1_a_healthy_candidate_is_promoted_through_every_step(stack):
    watch = Recorder(stack.api, "isvc", "cancer")
    stack.apply(model_rollout("v2", stack.prometheus.url, **DRIFT))
    s = wait_for(phase_is(stack, "Promoted", "RolledBack"), timeout=180, what="the rollout to finish")
    assert s["phase"] == "Promoted", s["message"]
    wait_for(isvc_serves(stack, "v2"), what="v2 alone in the InferenceService")
    seen = stack.driver.report()
    history = watch.stop()

    assert [w for w in weights_seen(history) if w] == [20, 50]     # 100% is the promotion, never an analysed step
    s = status_of(stack.api)
    assert s["stableVersion"] == "v2" and s.get("canaryVersion") is None and s["lastAnalysis"]["verdict"] == "Pass"
    assert s["lastAnalysis"]["predictionDrift"]["probabilities"]["distance"] < 0.1
    reasons = [e["reason"] for e in events_of(stack.api, "cancer")]
    assert reasons[0] == "RolloutStarted" and reasons.count("StepAdvanced") == 1 and reasons[-1] == "Promoted"
    assert seen["v2"]["requests"] > 30 and seen["v2"]["errors"] == 0 and seen["v1"]["errors"] == 0


def test_2_a_candidate_with_errors_is_rolled_back_before_the_middle_step(stack):
    watch = Recorder(stack.api, "isvc", "cancer")
    stack.apply(model_rollout("v3-errors", stack.prometheus.url))
    s = wait_for(phase_is(stack, "RolledBack", "Promoted"), timeout=180, what="a verdict")
    wait_for(stable_pinned(stack, "v3-errors"), what="stable pinned")
    seen = stack.driver.report()
    history = watch.stop()

    assert s["phase"] == "RolledBack" and s["lastAnalysis"]["verdict"] == "Fail"
    assert "error rate" in s["lastAnalysis"]["reason"] and s["lastAnalysis"]["errorRate"] > 0.02
    assert max(weights_seen(history)) < 50                      # never reached the middle step
    assert seen["v3-errors"]["errors"] > 0                      # the clients did see the canary fail...
    assert seen["v1"]["errors"] == 0 and seen["v1"]["requests"] > 100   # ...and never stable
    assert any(e["reason"] == "RolledBack" and e["type"] == "Warning" for e in events_of(stack.api, "cancer"))


def test_3_a_candidate_with_a_latency_regression_is_rolled_back(stack):
    # the product's default tolerance (x1.2), not the suite's x2 that keeps jitter from rolling
    # back healthy candidates: on a loaded CI machine stable's p99 rose into v3-slow's own range
    # (part of the canary's requests fell below stable's p99 bound) and at x2 v3-slow was promoted
    stack.apply(model_rollout("v3-slow", stack.prometheus.url, maxLatencyP99="500ms", latencyTolerance=1.2))
    s = wait_for(phase_is(stack, "RolledBack", "Promoted"), timeout=180, what="a verdict")
    analysis = {k: v for k, v in s["lastAnalysis"].items() if k not in ("queries", "evidence")}
    assert s["phase"] == "RolledBack" and analysis["verdict"] == "Fail", analysis     # the figures, if not
    wait_for(stable_pinned(stack, "v3-slow"), what="stable pinned")
    # under the absolute limit, so the relative, statistical gate caught it
    assert analysis["latencyP99"] < 0.5 and analysis["latencyPValue"] < 0.05
    assert analysis["latencyP99"] > analysis["stableLatencyP99"] * 1.2
    seen = stack.driver.report()
    assert seen["v3-slow"]["p50_ms"] > seen["v1"]["p50_ms"]


def test_4_manual_pause_promote_and_abort(stack):
    """Steered with the kubectl plugin, run by the real kubectl (`kubectl modelrollout ...`)."""
    steps = [{"weight": 20}, {"weight": 50}, {"weight": 100}]
    stack.apply(model_rollout("v2", stack.prometheus.url, steps=steps, interval="3s"))
    wait_for(lambda: status_of(stack.api).get("canaryWeight") == 20, what="first step")
    assert stack.plugin("pause", "cancer").returncode == 0
    wait_for(phase_is(stack, "Paused"), what="paused")
    reconciles = stack.operator.metric("modelrollout_reconcile_duration_seconds_count")
    wait_for(lambda: stack.operator.metric("modelrollout_reconcile_duration_seconds_count") > reconciles + 20,
             what="the operator to look again, for well past a step's interval")
    s = status_of(stack.api)
    assert s["phase"] == "Paused" and s["canaryWeight"] == 20
    assert get(stack.api, "isvc", "cancer")["spec"]["predictor"]["canaryTrafficPercent"] == 20

    screen = stack.plugin("get", "cancer").stdout
    assert "Status:           ॥ Paused" in screen and "v2  pvc://models/cancer/v2  20%" in screen, screen
    promoted = stack.plugin("promote", "cancer")                 # promote now, straight from 20%
    assert promoted.returncode == 0 and '"promote": "v2"' in promoted.stdout, promoted.stderr
    waited = stack.plugin("status", "cancer", "--watch", "--timeout", "90", timeout=120)
    assert waited.returncode == 0 and "Promoted" in waited.stdout.splitlines()[-1], (waited.stdout, waited.stderr)
    wait_for(isvc_serves(stack, "v2"), what="v2 serving all")
    refused = stack.plugin("abort", "cancer")                    # nothing to abort once promoted
    assert refused.returncode == 1 and "nothing to abort: the rollout is Promoted" in refused.stderr

    stack.patch('{"spec":{"paused":false,"promote":null,"model":{"version":"v1","storageUri":"%s"}}}' % uri_of("v1"))
    wait_for(lambda: status_of(stack.api).get("canaryVersion") == "v1", what="a rollout of v1 over v2")
    assert stack.plugin("abort", "cancer").returncode == 0
    waited = stack.plugin("status", "cancer", "--watch", "--timeout", "90", timeout=120)
    assert waited.returncode == 1 and "RolledBack" in waited.stdout.splitlines()[-1], (waited.stdout, waited.stderr)
    s = wait_for(phase_is(stack, "RolledBack"), what="aborted")
    wait_for(stable_pinned(stack, "v1"), what="v2 pinned")
    assert s["stableVersion"] == "v2" and "aborted by spec.abort" in s["message"]
    listed = stack.plugin("get").stdout.splitlines()
    assert listed[0].split()[:3] == ["NAME", "PHASE", "STABLE"] and listed[1].split()[:3] == ["cancer", "RolledBack", "v2"]


def test_5_prometheus_outage_holds_the_weight_and_then_continues(stack):
    steps = [{"weight": 20}, {"weight": 50}, {"weight": 100}]
    stack.apply(model_rollout("v2", stack.prometheus.url, steps=steps, consecutiveErrorLimit=100))
    wait_for(lambda: status_of(stack.api).get("stepStartedAt") and status_of(stack.api).get("canaryWeight") == 20,
             what="first step served")
    stack.prometheus.outage()
    try:
        s = wait_for(lambda: (lambda s: s if s.get("phase") == "Holding" and "metrics unavailable" in
                              (s.get("lastAnalysis") or {}).get("reason", "") else None)(status_of(stack.api)),
                     timeout=60, what="an Error verdict")
        first = s["lastAnalysis"]["time"]
        s = wait_for(lambda: (lambda s: s if (s.get("lastAnalysis") or {}).get("time") != first else None)(status_of(stack.api)),
                     timeout=60, what="a second Error verdict")
        assert s["phase"] == "Holding" and s["canaryWeight"] == 20 and s["lastAnalysis"]["verdict"] == "Error"
        assert s.get("failures", 0) == 0 and s["errors"] >= 2     # unreadable metrics are not a failed canary
        assert get(stack.api, "isvc", "cancer")["spec"]["predictor"]["canaryTrafficPercent"] == 20
    finally:
        stack.prometheus.start()
    wait_for(phase_is(stack, "Promoted"), timeout=180, what="promotion once Prometheus is back")


def test_6_a_killed_operator_resumes_at_the_same_step(stack):
    """About resuming, not judging: the latency gate has no say (on a loaded machine it once rolled
    the healthy v2 back at step 1: a whole-window slowdown of one process, as in test_9)."""
    steps = [{"weight": 20}, {"weight": 50, "hold": "1h"}, {"weight": 100}]
    stack.apply(model_rollout("v2", stack.prometheus.url, steps=steps, latencyTolerance=100.0))
    before = wait_for(lambda: (lambda s: s if (s.get("currentStep") == 1 and s.get("stepStartedAt"))
                               or s.get("phase") == "RolledBack" else None)(status_of(stack.api)),
                      timeout=120, what="the second step served")
    assert before["phase"] == "Progressing", before["message"]
    stack.operator.kill()
    events = len(events_of(stack.api, "cancer"))
    operator = stack.start_operator("operator-restarted.log")
    wait_for(lambda: operator.metric("modelrollout_reconcile_duration_seconds_count") >= 10, what="reconciles after restart")
    after = status_of(stack.api)
    assert (after["currentStep"], after["canaryWeight"], after["phase"]) == (1, 50, "Progressing")
    assert after["stepStartedAt"] == before["stepStartedAt"] and after["stableVersion"] == "v1"
    assert len(events_of(stack.api, "cancer")) == events
    assert get(stack.api, "isvc", "cancer")["spec"]["predictor"]["canaryTrafficPercent"] == 50


def settled(stack) -> bool:
    """KServe has reconciled the InferenceService's latest spec and calls it Ready."""
    obj = get(stack.api, "isvc", "cancer")
    return condition_true(obj) and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]


def test_7_the_last_step_is_promotion_never_an_analysed_canary(stack):
    """operator-review A1: at 100% KServe records the candidate as rolled out, and no rollback can
    bring stable back. So 100% is the promotion itself, never a step that waits for analysis."""
    stack.apply(model_rollout("v2", stack.prometheus.url, steps=[{"weight": 20}, {"weight": 100, "hold": "1h"}]))
    s = wait_for(phase_is(stack, "Promoted", "RolledBack"), timeout=120, what="the verdict at 20%")
    assert s["phase"] == "Promoted" and "analysis passed at 20%" in s["message"]


def test_8_an_abort_leaves_the_revision_template_alone_and_sends_every_request_back_to_stable(stack):
    """KServe's documented rollback: canaryTrafficPercent 0 and nothing else, so no new revision is
    created and the revision KServe last rolled out (stable) takes everything."""
    stack.apply(model_rollout("v2", stack.prometheus.url, steps=[{"weight": 20}, {"weight": 50, "hold": "1h"}, {"weight": 100}]))
    wait_for(lambda: status_of(stack.api).get("canaryWeight") == 50 and status_of(stack.api).get("stepStartedAt"),
             timeout=120, what="50% served")
    before = get(stack.api, "isvc", "cancer")
    assert set(stack.driver.landing(120)) == {"v1", "v2"}
    stack.patch('{"spec":{"abort":true}}')
    s = wait_for(phase_is(stack, "RolledBack"), what="aborted")
    assert s["stableVersion"] == "v1"
    wait_for(lambda: settled(stack), timeout=60, what="KServe to reconcile the rollback")
    after = get(stack.api, "isvc", "cancer")
    template = lambda obj: {k: v for k, v in obj["spec"]["predictor"].items() if k != "canaryTrafficPercent"}  # noqa: E731
    assert after["spec"]["predictor"]["canaryTrafficPercent"] == 0 and template(after) == template(before)
    revision = lambda obj: obj["status"]["components"]["predictor"]["latestCreatedRevision"]  # noqa: E731
    assert revision(after) == revision(before)                  # no new revision
    assert set(stack.driver.landing(300)) == {"v1"}          # none to the rejected candidate


def test_9_a_candidate_whose_predictions_shifted_is_rolled_back_by_the_drift_gate(stack):
    """v3-shifted is v2 answering `benign` for half the inputs: as fast, never failing, so only the
    drift gate can tell (issue 15). The latency gate is given no say: a process on this shared
    2-core machine is at times slower for a whole window (one CI run: 7 of 160 canary requests
    over 18ms, spread over 8 scrapes, against 0 of 595), which no time clustering can tell from a
    slower model; that false alarm is not what this scenario is about (issue 25)."""
    stack.apply(model_rollout("v3-shifted", stack.prometheus.url, **DRIFT, latencyTolerance=100.0))
    s = wait_for(phase_is(stack, "RolledBack", "Promoted"), timeout=180, what="a verdict")
    wait_for(stable_pinned(stack, "v3-shifted"), what="stable pinned")
    analysis = s["lastAnalysis"]
    assert s["phase"] == "RolledBack" and analysis["verdict"] == "Fail", s["message"]
    assert "'probabilities' predictions differ" in analysis["reason"]
    assert analysis["predictionDrift"]["probabilities"]["distance"] > 0.1 and analysis["errorRate"] == 0
    seen = stack.driver.report()
    assert seen["v3-shifted"]["errors"] == 0 and seen["v3-shifted"]["requests"] > 30


@pytest.fixture
def tagged_stack(control_plane, shared, tmp_path):
    """The InferenceService annotated for KServe's tag routing, and the holdout in a ConfigMap."""
    predictors, prometheus = shared
    with Rollout(control_plane, predictors, prometheus, tmp_path, tag_routing=True) as rollout:
        rollout.api.kubectl("create", "configmap", "cancer-holdout", f"--from-file=holdout.json={HOLDOUT}")
        yield rollout
        print(rollout.report())


def evaluation(stack) -> dict:
    return {"dataset": {"configMap": "cancer-holdout"}, "metric": "accuracy", "margin": 0.02, "gateway": stack.gateway.url}


def test_10_the_evaluation_step_refuses_a_worse_candidate_before_any_traffic_and_admits_a_better_one(tagged_stack):
    """v3-shifted is as fast and as error-free as v2 but 0.66 accurate on the holdout; v1 (stable)
    0.92, v2 0.97 (models/train.py). The holdout reaches each version at the address KServe's tag
    routing gives it, through the gateway, while the driver's traffic stays on stable."""
    stack = tagged_stack
    watch = Recorder(stack.api, "isvc", "cancer")
    stack.apply(model_rollout("v3-shifted", stack.prometheus.url, evaluation=evaluation(stack)))
    s = wait_for(phase_is(stack, "RolledBack", "Progressing", "Promoted"), timeout=180, what="the evaluation's verdict")
    assert s["phase"] == "RolledBack", s["message"]
    assert s["evaluation"]["verdict"] == "Fail" and s["evaluation"]["candidate"] < 0.75 and s["evaluation"]["stable"] > 0.9
    assert s["evaluation"]["rows"] == 114 and "worse by" in s["message"]
    wait_for(stable_pinned(stack, "v3-shifted"), what="stable pinned")
    reasons = [e["reason"] for e in events_of(stack.api, "cancer")]
    assert reasons == ["EvaluationStarted", "EvaluationFailed", "RolledBack"], reasons
    assert "v3-shifted" not in stack.driver.report()              # not one user request reached it
    assert weights_seen(watch.stop()) == [0]                      # the candidate ran at 0% throughout
    assert {version for _, version in stack.gateway.routed} == {"v3-shifted", "v1"}

    stack.patch('{"spec":{"model":{"version":"v2","storageUri":"%s"}}}' % uri_of("v2"))
    # v2's verdict, not v3-shifted's RolledBack still in status until the operator sees the edit
    s = wait_for(verdict_on(stack, "v2", "Promoted", "RolledBack"), timeout=240, what="v2's rollout to finish")
    assert s["phase"] == "Promoted", s["message"]
    assert s["evaluation"]["verdict"] == "Pass" and s["evaluation"]["version"] == "v2"
    assert s["evaluation"]["candidate"] > s["evaluation"]["stable"]
    reasons = [e["reason"] for e in events_of(stack.api, "cancer")]
    assert reasons[3:5] == ["EvaluationStarted", "EvaluationPassed"] and reasons[-1] == "Promoted", reasons
    assert stack.driver.report()["v2"]["requests"] > 30


def mirror_key(stack) -> str | None:
    """ConfigMap modelrollout-shadow's key for the InferenceService, as the operator left it."""
    cm = stack.kube.get("configmap", "modelrollout-shadow", namespace=stack.namespace) or {}
    return (cm.get("data") or {}).get("cancer.yaml")


def test_11_the_shadow_step_refuses_a_candidate_whose_answers_differ_before_any_user_reaches_it(tagged_stack):
    """Stable (v1) mirrors every request it answers to the candidate at its tag address (through the
    gateway, as a cluster's ingress would take it) and the paired answers are judged. On the
    driver's rows v3-shifted's class differs from v1's on 25% of them and v2's on 6% (the demo
    models disagree that much), so the limit is 15%: v3-shifted is refused, v2 passes."""
    stack = tagged_stack
    shadow = {"fraction": 1.0, "minPairs": 200, "maxDisagreement": 0.15, "duration": "2m", "gateway": stack.gateway.url}
    watch = Recorder(stack.api, "isvc", "cancer")
    stack.apply(model_rollout("v3-shifted", stack.prometheus.url, shadow=shadow))
    s = wait_for(verdict_on(stack, "v3-shifted", "RolledBack", "Progressing", "Promoted", "Paused"), timeout=180,
                 what="the shadow step's verdict")
    assert s["phase"] == "RolledBack", s["message"]
    assert s["shadow"]["verdict"] == "Fail" and s["shadow"]["outputs"]["probabilities"]["disagreement"] > 0.15
    assert "shadow comparison failed before any traffic" in s["message"]
    wait_for(stable_pinned(stack, "v3-shifted"), what="stable pinned")
    reasons = [e["reason"] for e in events_of(stack.api, "cancer")]
    assert reasons == ["ShadowStarted", "ShadowFailed", "RolledBack"], reasons
    assert "v3-shifted" not in stack.driver.report()              # not one user request reached it
    assert weights_seen(watch.stop()) == [0]                      # the candidate ran at 0% throughout
    mirrored = [version for host, version in stack.gateway.routed if host.startswith("latest-")]
    # the mirror's requests reached the candidate alone (each carries whatever waited in its queue);
    # a Fail needs no minPairs: the lower bound above the limit is enough
    assert mirrored and set(mirrored) == {"v3-shifted"} and s["shadow"]["compared"] > 0
    wait_for(lambda: mirror_key(stack) is None, what="the mirror's key removed")
    assert any("sourceVersion: v1" in text for text in stack.mirror_sync.copied)

    stack.patch('{"spec":{"model":{"version":"v2","storageUri":"%s"}}}' % uri_of("v2"))
    s = wait_for(verdict_on(stack, "v2", "Promoted", "RolledBack", "Paused"), timeout=240, what="v2's rollout to finish")
    assert s["phase"] == "Promoted", s["message"]
    assert s["shadow"]["verdict"] == "Pass" and s["shadow"]["version"] == "v2"
    reasons = [e["reason"] for e in events_of(stack.api, "cancer")]
    assert reasons[3:5] == ["ShadowStarted", "ShadowPassed"] and reasons[-1] == "Promoted", reasons
    assert mirror_key(stack) is None and stack.driver.report()["v2"]["requests"] > 30
