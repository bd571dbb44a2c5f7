"""The ModelRollout CRD on a real kube-apiserver: the apiserver itself applies its defaults and
evaluates its schema and CEL rules. The examples are accepted, and each rule refuses what it
should with a message naming the field. What the schema accepts, the operator's parser accepts."""
import copy
import json
from pathlib import Path

import pytest
import yaml

from modelrollout.spec import SpecError, parse_spec

CRD_PATH = Path(__file__).resolve().parents[2] / "crds/modelrollout.yaml"
EXAMPLES = sorted((CRD_PATH.parent / "examples").glob("*.yaml"))
BASE = yaml.safe_load((CRD_PATH.parent / "examples/cancer-serverless.yaml").read_text())


@pytest.fixture(scope="module")
def crd(control_plane):
    kube = control_plane.kube
    kube.apply(CRD_PATH.read_text())
    kube.wait_established()
    return kube


def dry_run_create(kube, namespace: str, obj: dict):
    """What the apiserver makes of obj on create: (the stored object, None) or (None, its error)."""
    result = kube.kubectl("create", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-",
                          input=json.dumps(obj), check=False)
    return (json.loads(result.stdout), None) if result.returncode == 0 else (None, result.stderr)


def test_crd_identity(crd):
    served = crd.get("crd", "modelrollouts.serving.modelrollout.io")
    assert served["spec"]["names"]["shortNames"] == ["mro"]
    version = served["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Stable", "Canary", "Weight", "Verdict", "Reason", "Evaluation", "Shadow", "Age"]
    assert [c.get("priority", 0) for c in version["additionalPrinterColumns"]] == [0, 0, 0, 0, 0, 1, 1, 1, 0]   # -o wide


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted_and_parse(crd, namespace, path: Path):
    stored, error = dry_run_create(crd, namespace, yaml.safe_load(path.read_text()))
    assert error is None, error
    spec = parse_spec(stored["spec"])          # what the apiserver accepts, the operator can act on
    assert spec.steps[-1].weight == 100


def test_defaults_are_applied_by_the_apiserver(crd, namespace):
    obj = copy.deepcopy(BASE)
    del obj["spec"]["strategy"]["interval"], obj["spec"]["analysis"]["minRequests"]
    stored, error = dry_run_create(crd, namespace, obj)
    assert error is None, error
    assert stored["spec"]["strategy"]["interval"] == "1m"
    assert stored["spec"]["analysis"]["minRequests"] == 100
    assert stored["spec"]["analysis"]["scrapeInterval"] == "15s" and stored["spec"]["analysis"]["errorRateMargin"] == 0.0002
    assert parse_spec(stored["spec"]).analysis.error_rate_margin == 0.0002
    assert stored["spec"]["paused"] is False and stored["spec"]["retry"] == 0
    assert "predictionDrift" not in stored["spec"]["analysis"]                     # the drift gate is opt-in


def test_prediction_drift_gets_its_defaults_and_range_checks(crd, namespace):
    obj = copy.deepcopy(BASE)
    obj["spec"]["analysis"]["predictionDrift"] = {}
    stored, error = dry_run_create(crd, namespace, obj)
    assert error is None, error
    assert stored["spec"]["analysis"]["predictionDrift"] == {"maxDistance": 0.1, "minPredictions": 100}
    obj["spec"]["analysis"]["predictionDrift"] = {"maxDistance": 1.5}
    _, error = dry_run_create(crd, namespace, obj)
    assert error is not None and "spec.analysis.predictionDrift.maxDistance" in error


def test_the_evaluation_step_gets_its_defaults_and_is_refused_in_standard_mode(crd, namespace):
    obj = _with("evaluation", {"dataset": {"configMap": "holdout"}, "metric": "accuracy"})
    stored, error = dry_run_create(crd, namespace, obj)
    assert error is None, error
    assert stored["spec"]["evaluation"] == {"dataset": {"configMap": "holdout", "key": "holdout.json"}, "metric": "accuracy",
                                            "margin": 0, "batchSize": 32, "timeout": "30s"}
    assert parse_spec(stored["spec"]).evaluation.config_map == "holdout"
    obj["spec"]["strategy"]["trafficMode"] = "standard"
    obj["spec"]["autoscaling"] = {"metric": "cpu"}
    _, error = dry_run_create(crd, namespace, obj)
    assert "evaluation needs trafficMode serverless" in error
    with pytest.raises(SpecError, match="needs trafficMode serverless"):
        parse_spec(obj["spec"])


def test_the_shadow_step_gets_its_defaults_and_is_refused_in_standard_mode(crd, namespace):
    stored, error = dry_run_create(crd, namespace, _with("strategy.shadow", {}))
    assert error is None, error
    assert stored["spec"]["strategy"]["shadow"] == {"fraction": 0.1, "minPairs": 200, "maxDisagreement": 0.05,
                                                    "duration": "10m", "share": 0.2}
    shadow = parse_spec(stored["spec"]).shadow
    assert (shadow.fraction, shadow.min_pairs, shadow.max_disagreement, shadow.duration) == (0.1, 200, 0.05, 600.0)
    obj = _with("strategy.shadow", {})
    obj["spec"]["strategy"]["trafficMode"] = "standard"
    obj["spec"]["autoscaling"] = {"metric": "cpu"}
    assert "strategy.shadow needs trafficMode serverless" in dry_run_create(crd, namespace, obj)[1]
    with pytest.raises(SpecError, match="needs trafficMode serverless"):
        parse_spec(obj["spec"])


@pytest.mark.parametrize("value,schema,operator", [
    ({"fraction": 0}, "spec.strategy.shadow.fraction", "spec.strategy.shadow.fraction"),
    ({"share": 0.9}, "spec.strategy.shadow.share", "spec.strategy.shadow.share"),
    ({"maxDisagreement": 2}, "spec.strategy.shadow.maxDisagreement", "spec.strategy.shadow.maxDisagreement"),
    ({"gateway": "ingress:80"}, "shadow.gateway must start with http", "spec.strategy.shadow.gateway"),
    ({"duration": "soon"}, "shadow.duration must be a duration", "spec.strategy.shadow.duration"),
], ids=["fraction", "share", "disagreement", "gateway", "duration"])
def test_bad_shadow_steps_are_refused_by_the_schema_and_the_operator(crd, namespace, value, schema, operator):
    obj = _with("strategy.shadow", value)
    assert schema in (dry_run_create(crd, namespace, obj)[1] or "accepted")
    with pytest.raises(SpecError, match=operator):
        parse_spec(obj["spec"])


def test_the_guardrail_gets_its_defaults(crd, namespace):
    stored, error = dry_run_create(crd, namespace, _with("analysis.guardrail", {}))
    assert error is None, error
    assert stored["spec"]["analysis"]["guardrail"] == {"maxErrorRate": 0.2, "share": 0.1}
    assert parse_spec(stored["spec"]).analysis.guardrail.max_error_rate == 0.2


def test_the_knative_provider_is_refused_in_standard_mode(crd, namespace):
    obj = _with("analysis.metrics", {"provider": "knative"})
    stored, error = dry_run_create(crd, namespace, obj)
    assert error is None, error
    assert stored["spec"]["analysis"]["metrics"] == {"provider": "knative", "revisionLabel": "serving_knative_dev_revision"}
    assert parse_spec(stored["spec"]).analysis.metrics.provider == "knative"
    obj["spec"]["strategy"]["trafficMode"] = "standard"
    obj["spec"]["autoscaling"] = {"metric": "cpu"}
    assert "provider knative reads the queue-proxy of Knative revisions" in dry_run_create(crd, namespace, obj)[1]
    with pytest.raises(SpecError, match="which only trafficMode serverless has"):
        parse_spec(obj["spec"])


def test_standard_mode_scales_on_cpu_or_memory(crd, namespace):
    obj = _with("strategy.trafficMode", "standard")
    obj["spec"]["autoscaling"] = {"metric": "memory"}
    assert dry_run_create(crd, namespace, obj)[1] is None
    obj["spec"]["autoscaling"] = {"metric": "rps"}
    assert "standard mode (an HPA) on cpu or memory" in dry_run_create(crd, namespace, obj)[1]


def _with(path: str, value):
    obj = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = obj["spec"]
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return obj


_DELETE = object()

INVALID = [
    # (field set, value, text the apiserver's error must contain: the field's path and the rule's message)
    ("strategy.steps", [{"weight": 50}, {"weight": 20}, {"weight": 100}], "spec.strategy.steps: Invalid value"),
    ("strategy.steps", [{"weight": 50}, {"weight": 50}, {"weight": 100}], "weights must increase strictly"),
    ("strategy.steps", [{"weight": 10}, {"weight": 60}], "the last step must have weight 100"),
    ("strategy.steps", [], "spec.strategy.steps"),
    ("strategy.steps", [{"weight": 0}, {"weight": 100}], "spec.strategy.steps[0].weight"),
    ("strategy.steps", [{"weight": 10, "hold": "soon"}, {"weight": 100}], "hold must be a duration"),
    ("strategy.interval", "90", "interval must be a duration"),
    ("strategy.interval", "500ms", "interval must be a duration of at least 1s"),
    ("strategy.trafficMode", "istio", "spec.strategy.trafficMode"),
    ("analysis.maxErrorRate", 1.5, "spec.analysis.maxErrorRate"),
    ("analysis.maxLatencyP99", "fast", "maxLatencyP99 must be a positive duration"),
    ("analysis.prometheus.url", "prometheus:9090", "prometheus.url must start with http"),
    ("analysis.onInconclusive.action", "ignore", "spec.analysis.onInconclusive.action"),
    ("analysis.scrapeInterval", "30s", "analysis.window must hold three scrapeIntervals"),    # 1m: two
    ("analysis.scrapeInterval", "0s", "scrapeInterval must be a positive duration"),
    ("autoscaling", {"minReplicas": 5, "maxReplicas": 2}, "autoscaling.maxReplicas must be >= minReplicas"),
    ("promote", "v9", "spec.promote must name the candidate"),
    ("model.version", _DELETE, "spec.model.version: Required value"),
    ("inferenceService", "", "spec.inferenceService"),
    ("retry", -1, "spec.retry"),
    ("evaluation", {"dataset": {"configMap": "h"}, "metric": "f1"}, "spec.evaluation.metric"),
    ("evaluation", {"dataset": {"configMap": "h"}, "metric": "mae", "gateway": "ingress:80"},
     "evaluation.gateway must start with http"),
    ("evaluation", {"metric": "accuracy"}, "spec.evaluation.dataset: Required value"),
    ("autoscaling", {"metric": "cpu"}, "serverless mode (Knative's autoscaler) scales on concurrency or rps"),
]
# where measurements come from (sources.py refuses the same)
SOURCES = [
    ("analysis.metrics", {"provider": "custom"}, "metrics.queries: required by provider custom"),
    ("analysis.metrics", {"provider": "knative", "queries": {"requests": "a", "errors": "b"}}, "taken by no other"),
    ("analysis.metrics", {"provider": "datadog"}, "spec.analysis.metrics.provider"),
    ("analysis.metrics", {"provider": "custom", "queries": {"requests": "a"}}, "spec.analysis.metrics.queries.errors"),
    ("analysis.prometheus.tlsConfig", {"ca": {"secret": {"name": "a", "key": "b"}, "configMap": {"name": "a", "key": "b"}}},
     "exactly one of secret or configMap"),
    ("analysis.prometheus.authorization", {"credentials": {"name": "token"}}, "spec.analysis.prometheus.authorization.credentials.key"),
    ("analysis.prometheus.headers", {"X-Scope-OrgID": 7}, "spec.analysis.prometheus.headers"),
]
INVALID += SOURCES + [("analysis.guardrail", {"share": 0.9}, "spec.analysis.guardrail.share")]


@pytest.mark.parametrize("field,value,message", INVALID, ids=[f"{f}={v}" for f, v, _ in INVALID])
def test_invalid_specs_are_refused_naming_the_field(crd, namespace, field, value, message):
    stored, error = dry_run_create(crd, namespace, _with(field, value))
    assert stored is None, f"the apiserver accepted {field}={value!r}"
    assert message in error, error


@pytest.mark.parametrize("field,value,_", INVALID[:3] + INVALID[13:14] + INVALID[15:17] + INVALID[-5 - len(SOURCES):],
                         ids=["dec", "dup", "last", "scrapes", "replicas", "promote", "eval-metric", "gateway", "dataset",
                              "metric", *(f"sources-{i}" for i in range(len(SOURCES))), "guardrail-share"])
def test_the_operator_refuses_what_the_schema_refuses(field, value, _):
    # defence in depth: a spec that bypassed the schema still gets a SpecError naming the field
    with pytest.raises(SpecError):
        parse_spec(_with(field, value)["spec"])


def test_webhooks_and_notifications_get_their_defaults(crd, namespace):
    obj = _with("webhooks", [{"name": "smoke", "type": "pre-rollout", "url": "http://tester.ml/"}])
    obj["spec"]["notifications"] = [{"name": "team", "urlFrom": {"secretKeyRef": {"name": "slack", "key": "url"}}}]
    stored, error = dry_run_create(crd, namespace, obj)
    assert error is None, error
    assert stored["spec"]["webhooks"][0]["timeout"] == "10s"
    assert stored["spec"]["notifications"][0] == {"name": "team", "format": "generic", "timeout": "5s",
                                                  "urlFrom": {"secretKeyRef": {"name": "slack", "key": "url"}}}
    parsed = parse_spec(stored["spec"])
    assert parsed.has_hooks("pre-rollout") and parsed.notifications[0].target.secret.name == "slack"


HOOKS = [
    ("webhooks", [{"name": "a", "type": "pre-rollout"}], "a webhook needs exactly one of url or urlFrom"),
    ("webhooks", [{"name": "a", "type": "later", "url": "http://x"}], "spec.webhooks[0].type"),
    ("webhooks", [{"name": "a", "type": "event", "url": "http://x"}, {"name": "a", "type": "event", "url": "http://y"}],
     "spec.webhooks[1]: Duplicate value"),
    ("notifications", [{"name": "t", "format": "discord", "url": "http://x"}], "spec.notifications[0].format"),
    ("notifications", [{"name": "t", "url": "http://x", "urlFrom": {"secretKeyRef": {"name": "a", "key": "b"}}}],
     "a notification needs exactly one of url or urlFrom"),
]


@pytest.mark.parametrize("field,value,message", HOOKS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(HOOKS)])
def test_bad_webhooks_are_refused_by_the_schema_and_the_operator(crd, namespace, field, value, message):
    stored, error = dry_run_create(crd, namespace, _with(field, value))
    assert stored is None and message in error, error
    with pytest.raises(SpecError):
        parse_spec(_with(field, value)["spec"])
