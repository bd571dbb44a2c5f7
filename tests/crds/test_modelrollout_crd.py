"""The ModelRollout CRD: its examples validate, and each schema/CEL rule refuses what it should
with a message naming the field. The schema and the operator's parser must agree."""
import copy
from pathlib import Path

import pytest
import yaml

from e2e.localstack.crd_schema import CRD_PATH, CrdValidator, Invalid
from modelrollout.spec import SpecError, parse_spec

EXAMPLES = sorted((CRD_PATH.parent / "examples").glob("*.yaml"))
VALIDATOR = CrdValidator.from_file()
BASE = yaml.safe_load(EXAMPLES[0].read_text())


def test_crd_identity():
    crd = yaml.safe_load(CRD_PATH.read_text())
    assert crd["metadata"]["name"] == "modelrollouts.serving.modelrollout.io"
    assert crd["spec"]["names"]["shortNames"] == ["mro"]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Stable", "Canary", "Weight", "Verdict", "Age"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_and_parse(path: Path):
    obj = VALIDATOR.validate(yaml.safe_load(path.read_text()))
    spec = parse_spec(obj["spec"])          # what the schema accepts, the operator can act on
    assert spec.steps[-1].weight == 100


def test_defaults_are_applied():
    obj = copy.deepcopy(BASE)
    del obj["spec"]["strategy"]["interval"], obj["spec"]["analysis"]["minRequests"]
    out = VALIDATOR.validate(obj)
    assert out["spec"]["strategy"]["interval"] == "1m"
    assert out["spec"]["analysis"]["minRequests"] == 100
    assert out["spec"]["paused"] is False and out["spec"]["retry"] == 0


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
    # (field set, value, text the error must contain)
    ("strategy.steps", [{"weight": 50}, {"weight": 20}, {"weight": 100}], "steps: weights must increase strictly"),
    ("strategy.steps", [{"weight": 50}, {"weight": 50}, {"weight": 100}], "weights must increase strictly"),
    ("strategy.steps", [{"weight": 10}, {"weight": 60}], "the last step must have weight 100"),
    ("strategy.steps", [], "spec.strategy.steps"),
    ("strategy.steps", [{"weight": 0}, {"weight": 100}], "spec.strategy.steps.0.weight"),
    ("strategy.steps", [{"weight": 10, "hold": "soon"}, {"weight": 100}], "strategy.steps[0].hold: hold must be a duration"),
    ("strategy.interval", "90", "strategy.interval: interval must be a duration"),
    ("strategy.interval", "500ms", "interval must be a duration of at least 1s"),
    ("strategy.trafficMode", "istio", "spec.strategy.trafficMode"),
    ("analysis.maxErrorRate", 1.5, "spec.analysis.maxErrorRate"),
    ("analysis.maxLatencyP99", "fast", "analysis.maxLatencyP99: maxLatencyP99 must be a positive duration"),
    ("analysis.prometheus.url", "prometheus:9090", "prometheus.url must start with http"),
    ("analysis.onInconclusive.action", "ignore", "spec.analysis.onInconclusive.action"),
    ("autoscaling", {"minReplicas": 5, "maxReplicas": 2}, "spec.autoscaling.maxReplicas: autoscaling.maxReplicas must be >= minReplicas"),
    ("promote", "v9", "spec.promote: spec.promote must name the candidate"),
    ("model.version", _DELETE, "'version' is a required property"),
    ("inferenceService", "", "spec.inferenceService"),
    ("retry", -1, "spec.retry"),
]


@pytest.mark.parametrize("field,value,message", INVALID, ids=[f"{f}={v}" for f, v, _ in INVALID])
def test_invalid_specs_are_refused_naming_the_field(field, value, message):
    with pytest.raises(Invalid) as info:
        VALIDATOR.validate(_with(field, value))
    assert message in str(info.value), str(info.value)


@pytest.mark.parametrize("field,value,_", INVALID[:3] + INVALID[13:15], ids=["dec", "dup", "last", "replicas", "promote"])
def test_the_operator_refuses_what_the_schema_refuses(field, value, _):
    # defence in depth: a spec that bypassed the schema still gets a SpecError naming the field
    with pytest.raises(SpecError):
        parse_spec(_with(field, value)["spec"])
