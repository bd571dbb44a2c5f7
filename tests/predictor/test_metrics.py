"""The predictor's series as Prometheus scrapes them (the exposition text)."""
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from predictor.metrics import CODES, LATENCY_BUCKETS, PROTOCOLS, PredictorMetrics


def scrape(registry) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def requests(samples, **labels) -> float | None:
    key = ("predictor_requests_total", tuple(sorted({"model": "cancer", "version": "v2", **labels}.items())))
    return samples.get(key)


def test_every_request_series_exists_at_zero_before_the_first_request():
    registry = CollectorRegistry()
    PredictorMetrics(registry).for_model("cancer", "v2")
    samples = scrape(registry)
    for protocol in PROTOCOLS:
        for code in (200, 429, 499, 500, 504):
            assert requests(samples, protocol=protocol, code=str(code)) == 0.0, (protocol, code)
    assert len(CODES) * len(PROTOCOLS) == sum(1 for name, _ in samples if name == "predictor_requests_total")


def test_latency_is_kept_apart_by_status_class():
    registry = CollectorRegistry()
    m = PredictorMetrics(registry).for_model("cancer", "v2")
    m.request_done("rest", 200, 0.2)
    m.request_done("rest", 429, 0.0001)
    samples = scrape(registry)

    def count(cls):
        return samples[("predictor_request_duration_seconds_count", tuple(sorted(
            {"model": "cancer", "version": "v2", "protocol": "rest", "status_class": cls}.items())))]
    assert (count("2xx"), count("4xx"), count("5xx")) == (1.0, 1.0, 0.0)
    assert requests(samples, protocol="rest", code="429") == 1.0


def test_latency_bounds_resolve_a_twenty_percent_change_from_1ms_to_10s():
    assert LATENCY_BUCKETS[0] == 0.001 and LATENCY_BUCKETS[-1] == 10.0
    ratios = [b / a for a, b in zip(LATENCY_BUCKETS, LATENCY_BUCKETS[1:])]
    assert max(ratios) <= 1.25 + 1e-9 and min(ratios) > 1.0


def test_each_forward_pass_adds_its_requests_and_their_square():
    registry = CollectorRegistry()
    m = PredictorMetrics(registry).for_model("cancer", "v2")
    for requests_in_pass in (1, 3, 4):
        m.batch_done(rows=requests_in_pass * 2, requests=requests_in_pass, seconds=0.01)
    samples = scrape(registry)
    labels = tuple(sorted({"model": "cancer", "version": "v2"}.items()))
    assert samples[("predictor_batch_requests_total", labels)] == 8
    assert samples[("predictor_batch_peers_total", labels)] == 1 + 9 + 16    # size-biased batch size 26/8


def test_the_mirrors_series_exist_at_zero_and_count_pairs_by_output():
    from predictor.shadow import Paired
    registry = CollectorRegistry()
    m = PredictorMetrics(registry).for_model("cancer", "v1")
    m.count_shadow(("probabilities", "score"))
    samples = scrape(registry)

    def value(name, **labels):
        return samples.get((name, tuple(sorted({"model": "cancer", "version": "v1", **labels}.items()))))
    assert all(value("predictor_shadow_requests_total", outcome=o) == 0.0 for o in ("compared", "failed", "dropped"))
    assert value("predictor_shadow_pairs_total", output="score") == 0.0
    m.shadow_outcome("compared")
    m.shadow_pairs([Paired("probabilities", 4, 1, None, None), Paired("score", 4, None, -0.5, 0.75)])
    samples = scrape(registry)
    assert value("predictor_shadow_requests_total", outcome="compared") == 1.0
    assert value("predictor_shadow_disagreements_total", output="probabilities") == 1.0
    assert value("predictor_shadow_difference_sum", output="score") == -0.5       # a gauge: it may fall
    assert value("predictor_shadow_difference_squares_total", output="score") == 0.75
    assert value("predictor_shadow_disagreements_total", output="score") == 0.0    # no bins declared
