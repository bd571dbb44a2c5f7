"""spec.analysis.metrics (the provider) and spec.analysis.prometheus's access, as parse_spec reads them."""
import pytest

from modelrollout.sources import CustomQueries, KeyRef, MetricsSpec, PrometheusAccess
from modelrollout.spec import SpecError, parse_spec

from .test_spec import spec

TRITON = {"requests": 'nv_inference_request_success{namespace="{{namespace}}"} + nv_inference_request_failure',
          "errors": 'nv_inference_request_failure{model="{{model}}",version="{{version}}"}'}


def analysis(**changes) -> dict:
    a = {"prometheus": {"url": "http://prom:9090"}}
    a.update(changes)
    return spec(analysis=a)


def test_the_default_provider_is_the_predictors_series_with_no_access_settings():
    a = parse_spec(analysis()).analysis
    assert a.metrics == MetricsSpec("modelrollout") and a.metrics.has_predictions and a.metrics.has_latency
    assert a.access == PrometheusAccess()


def test_knative_and_custom_providers_parse():
    assert parse_spec(analysis(metrics={"provider": "knative", "revisionLabel": "revision"})).analysis.metrics == \
        MetricsSpec("knative", "revision")
    custom = parse_spec(analysis(metrics={"provider": "custom", "queries": TRITON})).analysis.metrics
    assert custom.custom == CustomQueries(TRITON["requests"], TRITON["errors"], None) and not custom.has_latency


@pytest.mark.parametrize("metrics, extra, message", [
    ({"provider": "datadog"}, {}, r"metrics.provider: must be one of modelrollout, knative, custom"),
    ({"provider": "custom"}, {}, r"metrics.queries: provider custom needs requests and errors"),
    ({"provider": "custom", "queries": {**TRITON, "errors": "x{a=\"{{pod}}\"}"}}, {}, r"unknown placeholder \{\{pod\}\}"),
    ({"provider": "custom", "queries": {**TRITON, "requests": "increase(x[{{window}}])"}}, {}, r"not rate\(\) or increase\(\)"),
    ({"provider": "custom", "queries": {**TRITON, "requests": " "}}, {}, r"queries.requests: a PromQL expression"),
    ({"provider": "modelrollout", "queries": TRITON}, {}, r"only provider custom takes queries"),
    ({"provider": "knative", "revisionLabel": "serving.knative.dev/revision"}, {}, r"revisionLabel: .* not a Prometheus label"),
    ({"provider": "knative"}, {"predictionDrift": {}}, r"predictionDrift: needs predictor_predictions_total"),
    ({"provider": "custom", "queries": TRITON}, {"maxLatencyP99": "100ms"}, r"maxLatencyP99: provider custom has no latency"),
])
def test_bad_metrics_are_refused_naming_the_field(metrics, extra, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(analysis(metrics=metrics, **extra))


def test_knative_and_revision_placeholders_need_serverless_mode():
    standard = {"steps": [{"weight": 100}], "trafficMode": "standard"}
    with pytest.raises(SpecError, match="knative reads the queue-proxy"):
        parse_spec({**analysis(metrics={"provider": "knative"}), "strategy": standard})
    queries = {**TRITON, "requests": 'x{rev=~"{{revision}}"}'}
    with pytest.raises(SpecError, match=r"\{\{revision\}\} names Knative revisions"):
        parse_spec({**analysis(metrics={"provider": "custom", "queries": queries}), "strategy": standard})


def test_access_reads_a_token_secret_a_ca_and_headers():
    prometheus = {"url": "https://mimir:8080/prometheus", "authorization": {"credentials": {"name": "mimir", "key": "token"}},
                  "tlsConfig": {"ca": {"configMap": {"name": "ca", "key": "ca.crt"}}}, "headers": {"X-Scope-OrgID": "team-a"}}
    access = parse_spec(analysis(prometheus=prometheus)).analysis.access
    assert access == PrometheusAccess("Bearer", KeyRef("Secret", "mimir", "token"), KeyRef("ConfigMap", "ca", "ca.crt"),
                                      (("X-Scope-OrgID", "team-a"),))


@pytest.mark.parametrize("prometheus, message", [
    ({"authorization": {"type": "Bearer"}}, r"authorization: expected \{credentials"),
    ({"authorization": {"credentials": {"name": "s"}}}, r"authorization.credentials: expected \{name, key\}"),
    ({"authorization": {"type": "Bea rer", "credentials": {"name": "s", "key": "k"}}}, r"authorization.type"),
    ({"tlsConfig": {"ca": {"name": "ca", "key": "k"}}}, r"tlsConfig.ca: expected one of secret or configMap"),
    ({"headers": {"Authorization": "Bearer x"}}, r"headers: 'Authorization' is set by the operator"),
    ({"headers": {"X-Org": "a\nb"}}, r"headers: 'X-Org'"),
    ({"headers": {"X Org": "a"}}, r"headers: 'X Org'"),
])
def test_bad_access_is_refused_naming_the_field(prometheus, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(analysis(prometheus={"url": "http://prom:9090", **prometheus}))
