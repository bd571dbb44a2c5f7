"""Turning Prometheus's raw samples into exact per-scrape counts (the answer's shape is the HTTP
API's range-vector result)."""
import math

import pytest

from modelrollout.adapters.prometheus import PrometheusSource, version_sample
from modelrollout.adapters.providers import Target
from modelrollout.analysis import Window


def cancer(version: str) -> Target:
    """Model cancer's `version`, as the predictor labels its series."""
    return Target("default", "cancer", "cancer", version)


def series(*samples, pod="a", **labels):
    return {"metric": {"pod": pod, **labels}, "values": [[t, str(v)] for t, v in samples]}


def answers(requests=(), latency=(), batched=(), peers=(), predictions=()):
    return {"requests": list(requests), "latency": list(latency), "batched": list(batched), "peers": list(peers),
            "predictions": list(predictions)}


WINDOW = Window(start=100, end=130, since=90)


def test_each_scrape_is_counted_exactly_without_extrapolation():
    """15 s scrapes: the window (100, 130] holds the increments ending at 105, 120 (and the pair
    90 -> 105 begins at the step's start). increase() would have scaled them to the window's edges."""
    ok = series((90, 10), (105, 40), (120, 70), (135, 100), code="200")
    failed = series((90, 0), (105, 1), (120, 1), (135, 5), code="500")
    s = version_sample(answers([ok, failed]), WINDOW)
    assert (s.requests, s.errors) == (61, 1)                      # (40-10)+1 and (70-40)+0; 135 is after the end
    assert [(x.requests, x.errors) for x in s.scrapes] == [(31, 1), (30, 0)]
    assert s.age == 10


def test_nothing_that_began_before_the_step_was_served_counts():
    ok = series((80, 0), (95, 30), (110, 60), (125, 90), code="200")
    s = version_sample(answers([ok]), Window(start=100, end=130, since=96))
    assert s.requests == 30 and len(s.scrapes) == 1                # 95 -> 110 began before 96: left out


def test_consecutive_windows_count_every_scrape_once():
    ok = series(*[(t, t * 2) for t in range(90, 200, 15)], code="200")
    first = version_sample(answers([ok]), Window(90, 130, 90))
    second = version_sample(answers([ok]), Window(130, 190, 90))
    whole = version_sample(answers([ok]), Window(90, 190, 90))
    assert first.requests + second.requests == whole.requests == 2 * (180 - 90)


def test_a_counter_reset_counts_the_new_value_and_pods_are_scrapes_of_their_own():
    a = series((90, 50), (105, 3), (120, 7), code="200")           # the pod restarted before 105
    b = series((92, 0), (107, 10), (122, 20), code="200", pod="b")
    s = version_sample(answers([a, b]), WINDOW)
    assert s.requests == 3 + 4 + 10 + 10 and len(s.scrapes) == 4


def test_the_latency_histogram_and_batch_counters_join_their_scrapes():
    ok = series((90, 0), (105, 10), (120, 30), code="200", protocol="rest")
    latency = [series((90, 0), (105, 8), (120, 18), le="0.01", protocol="rest", status_class="2xx"),
               series((90, 0), (105, 10), (120, 30), le="+Inf", protocol="rest", status_class="2xx")]
    s = version_sample(answers([ok], latency, [series((90, 0), (120, 30))], [series((90, 0), (120, 90))]), WINDOW)
    assert s.buckets == ((0.01, 18), (math.inf, 30))
    assert [x.buckets for x in s.scrapes] == [((0.01, 8), (math.inf, 10)), ((0.01, 10), (math.inf, 20))]
    assert s.design_effect == pytest.approx(3.0)


def test_a_version_without_request_series_is_no_data_and_one_sample_is_no_count():
    assert version_sample(answers(), WINDOW) is None
    s = version_sample(answers([series((110, 50), code="200")]), WINDOW)
    assert s.requests == 0 and s.scrapes == ()


def test_the_range_reaches_two_scrapes_before_the_window_even_before_the_step():
    """Samples before the step count nothing (increments start at since); they show which series are new."""
    source = PrometheusSource(client=None, scrape_interval=15)
    q = source.queries(cancer("v2"), Window(start=1000, end=1060, since=900))
    assert q["requests"] == 'predictor_requests_total{model="cancer",version="v2"}[91s]'
    q = source.queries(cancer("v2"), Window(start=1000, end=1060, since=1000))
    assert q["latency"].endswith('status_class="2xx"}[91s]')


def test_a_series_born_in_the_window_counts_its_first_value():
    """A runtime creates the series of a status code at its first such request: the first scrape's
    value is its first increment. One seen from the range's start is not new: its first value is
    no increment."""
    first_errors = series((112, 3), (127, 5), code="500")
    old = series((72, 100), (87, 100), (102, 100), (117, 130), code="200")
    s = version_sample(answers([old, first_errors]), Window(start=100, end=130, since=90), born=70 + 22.5)
    assert (s.requests, s.errors) == (35, 5)
    # first seen before the step: served under the earlier split, so none of it counts
    assert version_sample(answers([old, first_errors]), Window(start=100, end=130, since=115), born=92.5).errors == 0
