"""Providers other than the predictor's own series, against a real Prometheus: `knative` reading
a real queue-proxy (Knative Serving's, built from the pinned module) in front of a V2 server that
is not ours, and `custom` reading a runtime's own counters through the user's PromQL."""
import json
import sys
import http.client
import time

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server

from modelrollout.adapters.prometheus import PrometheusClient, PrometheusSource
from modelrollout.adapters.providers import CustomSeries, KnativeSeries, Target
from modelrollout.analysis import Window
from modelrollout.sources import CustomQueries
from harness.processes import free_port

from e2e.controlplane.pod import USER_PORT, QueueProxiedPod
from e2e.controlplane.process import wait_for
from e2e.localstack.prometheus import PrometheusServer

pytestmark = pytest.mark.integration
REVISION = "serving_knative_dev_revision"      # what a PodMonitor's podTargetLabels makes of the pod label


def since(t0: float) -> Window:
    now = time.time()
    return Window(t0, now, t0)


def infer(address: str, n: int) -> list[int]:
    conn, codes = http.client.HTTPConnection(address, timeout=10), []
    body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}]})
    for _ in range(n):
        conn.request("POST", "/v2/models/cancer/infer", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        codes.append(response.status)
    return codes


@pytest.fixture(scope="module")
def pods(tmp_path_factory):
    """Stable (cancer-predictor-00001, no failures) and candidate (-00002, every 10th fails), each
    a pod of its own, and a Prometheus scraping their queue-proxies as a PodMonitor would."""
    workdir = tmp_path_factory.mktemp("pods")
    server = [sys.executable, "-m", "e2e.localstack.plain_v2", "--port", str(USER_PORT), "--model", "cancer"]
    stable = QueueProxiedPod(server, "team-a", "cancer-predictor-00001", workdir)
    canary = QueueProxiedPod(server + ["--fail-every", "10", "--delay", "0.02"], "team-a", "cancer-predictor-00002", workdir)
    with stable, canary:
        targets = [(p.metrics_target, {"namespace": "team-a", REVISION: p.revision}) for p in (stable, canary)]
        with PrometheusServer(targets) as prometheus:
            yield stable, canary, prometheus


def test_the_knative_provider_counts_what_queue_proxy_served_per_revision(pods):
    stable, canary, prometheus = pods
    t0 = time.time()
    assert infer(canary.serving_address, 200).count(500) == 20
    assert set(infer(stable.serving_address, 300)) == {200}
    source = PrometheusSource(PrometheusClient(prometheus.url), KnativeSeries(REVISION), scrape_interval=1)
    v2 = Target("team-a", "cancer", "cancer", "v2", (canary.revision,))
    v1 = Target("team-a", "cancer", "cancer", "v1", (stable.revision, "cancer-predictor-00003"))
    m = wait_for(lambda: (lambda m: m if m.canary and m.canary.requests >= 200 and m.stable and m.stable.requests >= 300
                          else None)(source.measure(v2, v1, since(t0 - 1), (("namespace", "team-a"),))),
                 what="queue-proxy's counts in Prometheus")
    assert (m.canary.requests, m.canary.errors, m.stable.requests, m.stable.errors) == (200, 20, 300, 0)
    # the successes' histogram, in queue-proxy's own bounds: the candidate takes 20 ms more per request
    assert m.canary.buckets[-1][1] == 180 and dict(m.canary.buckets)[0.01] == 0
    assert dict(m.stable.buckets)[0.01] > 250
    assert any("batch design effect" in lack for lack in m.lacks)


def test_a_version_no_revision_runs_has_no_series(pods):
    _, _, prometheus = pods
    source = PrometheusSource(PrometheusClient(prometheus.url), KnativeSeries(REVISION), scrape_interval=1)
    assert source.sample(Target("team-a", "cancer", "cancer", "v3", ()), since(time.time() - 30)) is None
    assert source.sample(Target("team-b", "cancer", "cancer", "v2", ("cancer-predictor-00002",)), since(time.time() - 30),
                         (("namespace", "team-b"),)) is None


@pytest.fixture(scope="module")
def runtime():
    """A runtime's own counters under Triton's names: successes and failures per model and version
    (prometheus_client would add _total to a Counter's name; a gauge that only grows is sampled alike)."""
    registry = CollectorRegistry()
    success = Gauge("nv_inference_request_success", "", ["model", "version"], registry=registry)
    failure = Gauge("nv_inference_request_failure", "", ["model", "version"], registry=registry)
    latency = Histogram("runtime_request_seconds", "", ["model", "version"], registry=registry, buckets=(0.01, 0.1, 1))
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    for v in ("1", "2"):                        # from zero, so the first increment is seen
        success.labels("cancer", v), failure.labels("cancer", v), latency.labels("cancer", v)
    with PrometheusServer([f"127.0.0.1:{port}"]) as prometheus:
        yield success, failure, latency, prometheus
    server.shutdown()


def test_the_custom_provider_reads_the_users_promql_per_scrape(runtime):
    success, failure, latency, prometheus = runtime
    queries = CustomQueries(
        requests='nv_inference_request_success{model="{{model}}",version="{{version}}"}'
                 ' + nv_inference_request_failure{model="{{model}}",version="{{version}}"}',
        errors='nv_inference_request_failure{model="{{model}}",version="{{version}}"}',
        latency='runtime_request_seconds_bucket{model="{{model}}",version="{{version}}"}')
    client = PrometheusClient(prometheus.url)
    wait_for(lambda: client.query('nv_inference_request_success{version="2"}'), what="a first scrape")
    t0 = time.time()
    for _ in range(3):                           # over several scrapes
        success.labels("cancer", "2").inc(95)
        failure.labels("cancer", "2").inc(5)
        for _ in range(95):
            latency.labels("cancer", "2").observe(0.05)
        success.labels("cancer", "1").inc(200)
        time.sleep(1.2)
    source = PrometheusSource(client, CustomSeries(queries), scrape_interval=1)
    v = (lambda version: Target("default", "cancer", "cancer", version))
    m = wait_for(lambda: (lambda m: m if m.canary and m.canary.requests >= 300 and m.stable.requests >= 600 else None)(
        source.measure(v("2"), v("1"), since(t0 - 0.5))), what="the runtime's counts")
    assert m.error is None and not m.warnings
    assert (m.canary.requests, m.canary.errors, m.stable.requests, m.stable.errors) == (300, 15, 600, 0)
    assert dict(m.canary.buckets)[0.1] == 285 and dict(m.canary.buckets)[0.01] == 0
    assert len(m.canary.scrapes) >= 3
    assert m.queries["canary_errors"].startswith('(nv_inference_request_failure{model="cancer",version="2"})[')
