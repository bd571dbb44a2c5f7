import re

import pytest

from modelrollout.spec import DriftSpec, EvaluationSpec, ShadowSpec, SpecError, parse_duration, parse_spec


def spec(**changes):
    base = {"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "pvc://m/cancer/v2"},
            "strategy": {"steps": [{"weight": 5, "hold": "2m"}, {"weight": 50}, {"weight": 100}], "interval": "30s"},
            "analysis": {"prometheus": {"url": "http://prom:9090/"}, "maxLatencyP99": "250ms"}}
    base.update(changes)
    return base


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("2m", 120), ("1h30m", 5400), ("250ms", 0.25), ("1m30s", 90), (5, 5)])
def test_durations(text, seconds):
    assert parse_duration(text, "f") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "m", "5 minutes", "-1s", None])
def test_bad_durations_name_the_field(text):
    with pytest.raises(SpecError, match="spec.x"):
        parse_duration(text, "spec.x")


def test_a_valid_spec():
    s = parse_spec(spec())
    assert [st.weight for st in s.steps] == [5, 50, 100] and s.steps[0].hold == 120 and s.steps[1].hold is None
    assert s.interval == 30 and s.analysis.max_latency_p99 == 0.25 and s.analysis.prometheus_url == "http://prom:9090"


@pytest.mark.parametrize("mode, metric, target", [("serverless", "concurrency", 8), ("standard", "cpu", 70)])
def test_the_scale_metric_defaults_to_what_the_mode_scales_on(mode, metric, target):
    s = parse_spec(spec(strategy={"steps": [{"weight": 100}], "trafficMode": mode}, autoscaling={"maxReplicas": 3}))
    assert (s.autoscaling.metric, s.autoscaling.target) == (metric, target)


def test_no_autoscaling_section_sets_none():
    assert parse_spec(spec(strategy={"steps": [{"weight": 100}]})).autoscaling is None


@pytest.mark.parametrize("changes, field", [
    ({"strategy": {"steps": [{"weight": 50}, {"weight": 20}, {"weight": 100}]}}, r"steps\[1\].weight: weights must increase"),
    ({"strategy": {"steps": [{"weight": 5}, {"weight": 50}]}}, "last step must have weight 100"),
    ({"strategy": {"steps": []}}, "at least one step"),
    ({"strategy": {"steps": [{"weight": 100, "hold": "soon"}]}}, r"steps\[0\].hold"),
    ({"strategy": {"steps": [{"weight": 100}], "trafficMode": "mesh"}}, "trafficMode"),
    ({"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}, "maxReplicas .2. must be >= minReplicas .5."),
    ({"analysis": {"prometheus": {}}}, "prometheus.url"),
    ({"analysis": {"prometheus": {"url": "http://p"}, "maxErrorRate": 2}}, "maxErrorRate"),
    ({"analysis": {"prometheus": {"url": "http://p"}, "onInconclusive": {"action": "panic"}}}, "onInconclusive.action"),
    ({"model": {"version": "v2"}}, "spec.model"),
    ({"retry": -1}, "spec.retry"),
    ({"autoscaling": {"metric": "cpu"}}, "spec.autoscaling.metric: serverless mode scales on concurrency or rps"),
    ({"strategy": {"steps": [{"weight": 100}], "trafficMode": "standard"}, "autoscaling": {"metric": "concurrency"}},
     "standard mode scales on cpu or memory"),
])
def test_invalid_specs_name_the_field(changes, field):
    with pytest.raises(SpecError, match=field):
        parse_spec(spec(**changes))


def test_queries_are_scoped_by_namespace_by_default_and_a_selector_can_add_labels():
    default = parse_spec(spec()).analysis
    assert (default.namespace_label, default.selector) == ("namespace", ())
    prometheus = {"url": "http://p", "namespaceLabel": "kubernetes_namespace", "selector": {"job": "kserve"}}
    scoped = parse_spec(spec(analysis={"prometheus": prometheus})).analysis
    assert (scoped.namespace_label, scoped.selector) == ("kubernetes_namespace", (("job", "kserve"),))
    assert parse_spec(spec(analysis={"prometheus": {"url": "http://p", "namespaceLabel": ""}})).analysis.namespace_label == ""


@pytest.mark.parametrize("prometheus, words", [
    ({"namespaceLabel": "name-space"}, "namespaceLabel: 'name-space' is not a Prometheus label name"),
    ({"selector": {"job": 3}}, "selector: 'job': 3"),
    ({"selector": {"version": "v1"}}, "set by the operator"),
    ({"selector": ["job"]}, "expected a mapping"),
])
def test_a_bad_scope_names_the_field(prometheus, words):
    with pytest.raises(SpecError, match=words):
        parse_spec(spec(analysis={"prometheus": {"url": "http://p", **prometheus}}))


def test_prediction_drift_is_off_unless_asked_for_and_parsed_with_defaults():
    assert parse_spec(spec()).analysis.prediction_drift is None
    analysis = {"prometheus": {"url": "http://p"}, "predictionDrift": {}}
    assert parse_spec(spec(analysis=analysis)).analysis.prediction_drift == DriftSpec(None, 0.1, 100)
    analysis["predictionDrift"] = {"output": "probabilities", "maxDistance": 0.2, "minPredictions": 50}
    assert parse_spec(spec(analysis=analysis)).analysis.prediction_drift == DriftSpec("probabilities", 0.2, 50)


@pytest.mark.parametrize("drift, field", [
    ({"maxDistance": 2}, "spec.analysis.predictionDrift.maxDistance"),
    ({"minPredictions": 0}, "spec.analysis.predictionDrift.minPredictions"),
    ({"output": ""}, "spec.analysis.predictionDrift.output"),
    ("on", "spec.analysis.predictionDrift"),
])
def test_a_bad_prediction_drift_names_the_field(drift, field):
    with pytest.raises(SpecError, match=re.escape(field)):
        parse_spec(spec(analysis={"prometheus": {"url": "http://p"}, "predictionDrift": drift}))


def test_the_evaluation_step_is_off_unless_asked_for_and_parsed_with_defaults():
    assert parse_spec(spec()).evaluation is None
    evaluation = {"dataset": {"configMap": "holdout"}, "metric": "logLoss"}
    assert parse_spec(spec(evaluation=evaluation)).evaluation == EvaluationSpec("holdout", "logLoss")
    evaluation.update(dataset={"configMap": "h", "key": "rows.json"}, output="probabilities", margin=0.02, batchSize=8,
                      timeout="5s", gateway="http://istio-ingressgateway.istio-system/")
    assert parse_spec(spec(evaluation=evaluation)).evaluation == EvaluationSpec(
        "h", "logLoss", "rows.json", "probabilities", 0.02, 8, 5.0, "http://istio-ingressgateway.istio-system")


@pytest.mark.parametrize("evaluation, field", [
    ({"metric": "accuracy"}, "spec.evaluation.dataset.configMap"),
    ({"dataset": {"configMap": "h"}, "metric": "auc"}, "spec.evaluation.metric"),
    ({"dataset": {"configMap": "h"}, "metric": "mae", "margin": -1}, "spec.evaluation.margin"),
    ({"dataset": {"configMap": "h"}, "metric": "mae", "batchSize": 0}, "spec.evaluation.batchSize"),
    ({"dataset": {"configMap": "h"}, "metric": "mae", "gateway": "ingress"}, "spec.evaluation.gateway"),
    ({"dataset": {"configMap": "h"}, "metric": "mae", "timeout": "soon"}, "spec.evaluation.timeout"),
    ("holdout", "spec.evaluation"),
])
def test_a_bad_evaluation_names_the_field(evaluation, field):
    with pytest.raises(SpecError, match=re.escape(field)):
        parse_spec(spec(evaluation=evaluation))


def shadowed(shadow, **strategy):
    return spec(strategy={"steps": [{"weight": 5}, {"weight": 100}], "shadow": shadow, **strategy})


def test_the_shadow_step_is_off_unless_asked_for_and_parsed_with_defaults():
    assert parse_spec(spec()).shadow is None
    assert parse_spec(shadowed({})).shadow == ShadowSpec()
    assert parse_spec(shadowed({"fraction": 1, "minPairs": 50, "maxDisagreement": 0.01, "duration": "2m", "share": 0.1,
                                "gateway": "http://kourier-internal.kourier-system/"})).shadow == ShadowSpec(
        1.0, 50, 0.01, 120.0, 0.1, "http://kourier-internal.kourier-system")


@pytest.mark.parametrize("shadow, strategy, field", [
    ({"fraction": 0}, {}, "spec.strategy.shadow.fraction: must be above 0"),
    ({"fraction": 1.5}, {}, "spec.strategy.shadow.fraction"),
    ({"minPairs": 0}, {}, "spec.strategy.shadow.minPairs"),
    ({"duration": "0s"}, {}, "spec.strategy.shadow.duration: must be above 0"),
    ({"gateway": "ingress"}, {}, "spec.strategy.shadow.gateway"),
    ({"fraction": "half"}, {}, "spec.strategy.shadow.fraction"),
    ({"pairs": 10}, {}, "spec.strategy.shadow: unknown field(s) ['pairs']"),
    ({}, {"trafficMode": "standard"}, "spec.strategy.shadow: needs trafficMode serverless"),
    ("on", {}, "spec.strategy.shadow: expected a mapping"),
])
def test_a_bad_shadow_step_names_the_field(shadow, strategy, field):
    raw = shadowed(shadow, **strategy)
    if strategy.get("trafficMode") == "standard":
        raw["autoscaling"] = {"metric": "cpu"}
    with pytest.raises(SpecError, match=re.escape(field)):
        parse_spec(raw)


def test_the_shadow_step_and_the_guardrail_leave_the_analysis_a_fifth_of_the_significance():
    raw = shadowed({"share": 0.5})
    raw["analysis"]["guardrail"] = {"share": 0.4}
    with pytest.raises(SpecError, match="must leave the analysis at least 0.2"):
        parse_spec(raw)
    raw["analysis"]["guardrail"] = {"share": 0.3}
    assert parse_spec(raw).shadow.share == 0.5


@pytest.mark.parametrize("model, words", [
    ({"runtimeVersion": "0.5/evil"}, "spec.model.runtimeVersion: expected an image tag"),
    ({"runtimeVersion": 5}, "spec.model.runtimeVersion"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "spec.model.resources.requests.cpu: 'lots' is not a quantity"),
    ({"resources": {"claims": [{"name": "gpu"}]}}, "spec.model.resources: expected requests and/or limits"),
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}, "spec.model.resources.requests.cpu: 2 is more than its limit 1"),
])
def test_a_bad_runtime_change_is_refused_naming_the_field(model, words):
    raw = {"inferenceService": "cancer", "model": {"version": "v2", "storageUri": "s3://m/v1", **model},
           "analysis": {"prometheus": {"url": "http://p"}}, "strategy": {"steps": [{"weight": 100}]}}
    with pytest.raises(SpecError, match=re.escape(words)):
        parse_spec(raw)


def test_a_runtime_change_is_read():
    raw = {"inferenceService": "cancer", "analysis": {"prometheus": {"url": "http://p"}}, "strategy": {"steps": [{"weight": 100}]},
           "model": {"version": "v2", "storageUri": "s3://m/v1", "runtimeVersion": "0.5.0", "resources": {"limits": {"memory": "4Gi"}}}}
    s = parse_spec(raw)
    assert (s.runtime_version, s.resources) == ("0.5.0", {"limits": {"memory": "4Gi"}})
