"""The PromQL each provider sends, and how its labels are read."""
from modelrollout.adapters.prometheus import PrometheusSource, version_sample
from modelrollout.adapters.providers import CustomSeries, KnativeSeries, Target
from modelrollout.analysis import Window
from modelrollout.sources import CustomQueries

V2 = Target("team-a", "cancer", "cancer", "v2", ("cancer-predictor-00002", "cancer-predictor-00004"))
WINDOW = Window(start=1000, end=1060, since=900)
SCOPE = (("namespace", "team-a"),)


def test_knative_reads_queue_proxys_histogram_by_revision():
    q = PrometheusSource(None, KnativeSeries("serving_knative_dev_revision"), 15).queries(V2, WINDOW, SCOPE)
    sel = 'namespace="team-a",serving_knative_dev_revision=~"cancer-predictor-00002|cancer-predictor-00004"'
    assert q == {"requests": f"kn_serving_invocation_duration_seconds_count{{{sel}}}[91s]",
                 "latency": f'kn_serving_invocation_duration_seconds_bucket{{{sel},http_response_status_code=~"2.."}}[91s]'}


def test_revision_names_are_regex_escaped_for_promql():
    from modelrollout.adapters.providers import revision_regex
    assert revision_regex(("a.b", "c-d")) == "a\\\\.b|c-d"      # PromQL source a\\.b: the regex a\.b


def test_knative_has_nothing_to_read_for_a_version_no_revision_runs():
    assert PrometheusSource(None, KnativeSeries("rev"), 15).queries(Target("a", "b", "b", "v3"), WINDOW) == {}


def test_knative_counts_5xx_status_codes_as_errors_and_keeps_pods_apart():
    def s(code, pod, *samples):
        return {"metric": {"http_response_status_code": code, "pod": pod, "otel_scope_name": "knative.dev/serving/pkg/queue"},
                "values": [[t, str(v)] for t, v in samples]}
    answers = {"requests": [s("200", "a", (990, 0), (1005, 40), (1020, 90)), s("503", "a", (990, 0), (1005, 2), (1020, 2)),
                            s("200", "b", (990, 10), (1005, 30), (1020, 60))]}
    sample = version_sample(answers, WINDOW, KnativeSeries("rev"))
    assert (sample.requests, sample.errors) == (142, 2)
    assert sorted((c.requests, c.errors) for c in sample.scrapes) == [(20, 0), (30, 0), (42, 2), (50, 0)]


def test_custom_templates_are_filled_escaped_and_read_per_scrape():
    templates = CustomQueries(requests='sum by (pod) (nv_inference_count{namespace="{{namespace}}",model="{{model}}"})',
                              errors='nv_inference_request_failure{version="{{version}}",revision=~"{{revision}}"}',
                              latency='my_latency_bucket{isvc="{{inferenceService}}"}')
    odd = Target('we"ird', "cancer", "cancer", "v2", ("cancer-predictor-00002",))
    q = PrometheusSource(None, CustomSeries(templates), 15).queries(odd, WINDOW)
    assert q["requests"] == '(sum by (pod) (nv_inference_count{namespace="we\\"ird",model="cancer"}))[91s:15s]'
    assert q["errors"] == '(nv_inference_request_failure{version="v2",revision=~"cancer-predictor-00002"})[91s:15s]'
    assert q["latency"] == '(my_latency_bucket{isvc="cancer"})[91s:15s]'


def test_custom_errors_come_from_their_own_series_in_the_same_scrapes():
    def s(*samples, **labels):
        return {"metric": {"pod": "a", **labels}, "values": [[t, str(v)] for t, v in samples]}
    answers = {"requests": [s((990, 0), (1005, 50), (1020, 100))], "errors": [s((990, 0), (1005, 1), (1020, 4))]}
    sample = version_sample(answers, WINDOW, CustomSeries(CustomQueries("r", "e")))
    assert (sample.requests, sample.errors) == (100, 4)
    assert [(c.requests, c.errors) for c in sample.scrapes] == [(50, 1), (50, 3)]


def test_providers_without_batches_or_predictions_say_so():
    assert any("batch design effect" in s for s in KnativeSeries("rev").lacks)
    assert any("no latency gates" in s for s in CustomSeries(CustomQueries("r", "e")).lacks)
    assert not any("latency" in s for s in CustomSeries(CustomQueries("r", "e", "l")).lacks)
