"""The Prometheus adapter against a real Prometheus scraping a small exporter run by the test."""
import math
import time

import pytest

from modelrollout.adapters.prometheus import PrometheusClient, PrometheusSource
from modelrollout.adapters.providers import Target
from modelrollout.analysis import Window
from harness.processes import free_port

from e2e.controlplane.process import wait_for
from e2e.localstack.prometheus import PrometheusServer

from .steady_traffic import Exporter

pytestmark = pytest.mark.integration


def cancer(version: str) -> Target:
    """Model cancer's `version`, as the predictor labels its series."""
    return Target("default", "cancer", "cancer", version)


def last(seconds: float) -> Window:
    """The window ending now, reaching `seconds` back (the step served from then)."""
    now = time.time()
    return Window(now - seconds, now, now - seconds)


@pytest.fixture(scope="module")
def exporter():
    with Exporter() as served:
        yield served.metrics, served.target


@pytest.fixture(scope="module")
def prometheus(exporter):
    with PrometheusServer([exporter[1]]) as prom:
        yield prom


def traffic(metrics, version, ok, errors, seconds):
    m = metrics.for_model("cancer", version)
    for _ in range(ok):
        m.request_done("rest", 200, seconds)
    for _ in range(errors):
        m.request_done("grpc", 500, seconds)


def test_instant_and_range_queries_and_a_measurement(exporter, prometheus):
    metrics, _ = exporter
    client = PrometheusClient(prometheus.url)
    source = PrometheusSource(client)
    for version in ("v1", "v2"):  # series exist from zero, so increase() sees every request
        metrics.for_model("cancer", version)
    wait_for(lambda: client.query('predictor_requests_total{version="v2",code="200"}'), what="first scrape")
    traffic(metrics, "v1", 900, 9, 0.004)
    traffic(metrics, "v2", 300, 30, 0.03)
    m = wait_for(lambda: (lambda m: m if m.canary and m.canary.requests >= 330 and m.stable.requests >= 909 else None)(
        source.measure(cancer("v2"), cancer("v1"), last(30))), what="a scrape of the traffic")
    assert m.error is None
    # raw samples: every request exactly once, no extrapolation to the window's edges
    assert (m.canary.requests, m.canary.errors, m.stable.requests, m.stable.errors) == (330, 30, 909, 9)
    assert math.isinf(m.canary.buckets[-1][0]) and m.canary.buckets[-1][1] == 300 and m.canary.age < 30
    assert m.canary.scrapes and sum(x.requests for x in m.canary.scrapes) == 330
    assert m.queries["canary_requests"].startswith("predictor_requests_total{") and m.window[0] < m.window[1]
    now = time.time()
    series = client.query_range('sum(predictor_requests_total{model="cancer"})', now - 20, now, 1)
    assert series and len(series[0]["values"]) >= 2


def test_a_version_with_no_series_is_no_data_not_zero(prometheus):
    m = PrometheusSource(PrometheusClient(prometheus.url)).measure(cancer("v9"), cancer("v1"), last(30))
    assert m.error is None and m.canary is None


def test_an_unreachable_prometheus_is_reported_not_raised():
    m = PrometheusSource(PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2)).measure(cancer("v2"), cancer("v1"), last(30))
    assert m.canary is None and "unreachable" in m.error


def test_a_bad_query_is_an_error(prometheus):
    from modelrollout.adapters.prometheus import PrometheusError
    with pytest.raises(PrometheusError, match="400"):
        PrometheusClient(prometheus.url).query("sum(")


def test_errors_before_the_first_scrape_of_a_version_are_counted(exporter, prometheus):
    """A version's first errors land in its code="500" series before Prometheus has ever seen
    that series; increase() counts them only if the series was exported at zero beforehand."""
    metrics, _ = exporter
    client = PrometheusClient(prometheus.url)
    m = metrics.for_model("cancer", "v7")
    for _ in range(50):
        m.request_done("rest", 200, 0.005)
    wait_for(lambda: client.query('predictor_requests_total{version="v7",code="200"} > 0'), what="a scrape of v7")
    for _ in range(4):
        m.request_done("rest", 500, 0.005)
    errors_at = time.time()
    wait_for(lambda: client.query(f'timestamp(predictor_requests_total{{version="v7",code="200"}}) > {errors_at + 1}'),
             what="a scrape after the errors")
    sample = PrometheusSource(client).sample(cancer("v7"), last(30))
    assert sample.errors == 4


def test_label_values_are_escaped_in_queries(exporter, prometheus):
    metrics, _ = exporter
    odd = 'v2"beta\\1'                                  # a quote and a backslash in a version label
    m = metrics.for_model("cancer", odd)
    for _ in range(20):
        m.request_done("rest", 200, 0.005)
    source = PrometheusSource(PrometheusClient(prometheus.url))
    measured = wait_for(lambda: (lambda r: r if r.canary else None)(source.measure(cancer(odd), cancer("v1"), last(30))),
                        what="the odd version's series")
    assert measured.error is None and measured.canary.requests >= 0


def test_the_batch_counters_reach_the_measurement_as_a_design_effect(exporter, prometheus):
    """Passes of 1, 3 and 4 requests: the size-biased batch size is (1 + 9 + 16) / 8."""
    metrics, _ = exporter
    client = PrometheusClient(prometheus.url)
    m = metrics.for_model("cancer", "v5")
    wait_for(lambda: client.query('predictor_batch_peers_total{version="v5"}'), what="a scrape of v5's counters")
    for size in (1, 3, 4) * 10:
        m.request_done("rest", 200, 0.005)
        m.batch_done(rows=size, requests=size, seconds=0.004)
    source = PrometheusSource(client)
    sample = wait_for(lambda: (lambda s: s if s and s.batched >= 80 else None)(source.sample(cancer("v5"), last(30))),
                      what="a scrape of the passes")
    assert sample.design_effect == 26 / 8


def test_queries_are_scoped_to_the_rollouts_namespace_so_a_second_scrape_is_not_counted(exporter):
    """The same pods scraped twice (two jobs, as annotations plus a PodMonitor would) and
    labelled with two namespaces: scoped queries count each request once, in its namespace."""
    metrics, target = exporter
    jobs = {"staging": {"namespace": "staging"}, "prod": {"namespace": "prod"}}
    with PrometheusServer([target], jobs=jobs) as prom:
        client = PrometheusClient(prom.url)
        m = metrics.for_model("cancer", "v4")
        # both jobs scraping for a while, so the window holds samples from before the requests
        aged = 'count by (job) (count_over_time(predictor_requests_total{version="v4",code="200",protocol="rest"}[10s]) >= 9)'
        wait_for(lambda: len(client.query(aged)) == 2, timeout=30, what="ten seconds of both jobs' scrapes")
        for _ in range(40):
            m.request_done("rest", 200, 0.005)
        source = PrometheusSource(client)

        def counted():
            window = last(10)
            each = [source.sample(cancer("v4"), window, scope=(("namespace", ns),)) for ns in ("staging", "prod")]
            return (each, window) if all(s and s.requests >= 40 for s in each) else None
        (staging, prod), window = wait_for(counted, what="each namespace's scrapes of the 40")
        unscoped = source.sample(cancer("v4"), window)
        assert staging.requests == prod.requests == 40                      # each job saw the 40 once
        assert unscoped.requests == 80                                      # unscoped counts them twice (M7)
        assert 'namespace="staging"' in source.queries(cancer("v4"), window, (("namespace", "staging"),))["requests"]


def test_slow_requests_between_two_scrapes_land_in_one_scrape_of_the_window(exporter, prometheus):
    """Fast requests before and after, twelve slow ones at once: the raw samples place the slow
    ones in a single scrape, and the scrapes add up to what was served."""
    metrics, _ = exporter
    client = PrometheusClient(prometheus.url)
    m = metrics.for_model("cancer", "v8")
    selector = 'predictor_request_duration_seconds_bucket{version="v8",le="+Inf",status_class="2xx"}'

    def scraped_after(moment):
        return lambda: client.query(f"timestamp({selector}) > {moment}")
    wait_for(scraped_after(0), what="a scrape of v8")
    for phase in ("fast", "slow", "fast"):
        for _ in range(20 if phase == "fast" else 12):
            m.request_done("rest", 200, 0.003 if phase == "fast" else 0.4)
        wait_for(scraped_after(time.time() + 0.1), what=f"a scrape after the {phase} requests")
    sample = PrometheusSource(client).sample(cancer("v8"), last(30))
    slow = [s.buckets for s in sample.scrapes if s.buckets[-1][1] - dict(s.buckets)[0.1] > 0]
    assert len(slow) == 1 and slow[0][-1][1] - dict(slow[0])[0.1] == 12
    assert sum(s.buckets[-1][1] for s in sample.scrapes if s.buckets) == 52


def test_prediction_counts_reach_the_measurement_by_output_and_bin(exporter, prometheus):
    metrics, _ = exporter
    client = PrometheusClient(prometheus.url)
    m = metrics.for_model("cancer", "v6")
    m.count_predictions("probabilities", ("malignant", "benign"))
    wait_for(lambda: client.query('predictor_predictions_total{version="v6",bin="benign"}'), what="a scrape of v6's zeros")
    for _ in range(30):
        m.request_done("rest", 200, 0.005)
        m.predicted("probabilities", {"malignant": 1, "benign": 3})
    source = PrometheusSource(client)
    sample = wait_for(lambda: (lambda s: s if s and sum(s.predictions.get("probabilities", {}).values()) >= 100 else None)(
        source.sample(cancer("v6"), last(30))), what="a scrape of the predictions")
    assert sample.predictions["probabilities"] == {"malignant": 30, "benign": 90}
