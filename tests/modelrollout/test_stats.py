import math

import pytest

from modelrollout import stats

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, math.inf)


def hist(*per_bucket):
    total, out = 0, []
    for bound, n in zip(BOUNDS, per_bucket):
        total += n
        out.append((bound, total))
    return tuple(out)


@pytest.mark.parametrize("q, buckets, expected", [
    (0.5, hist(100, 0, 0, 0, 0, 0), 0.0025),        # interpolated inside the first bucket
    (0.99, hist(0, 100, 0, 0, 0, 0), 0.00995),
    (0.99, hist(50, 0, 0, 0, 0, 50), 0.1),          # past the last finite bound
    (0.99, hist(0, 0, 0, 0, 0, 0), None),           # no requests
])
def test_quantile_interpolates_like_histogram_quantile(q, buckets, expected):
    got = stats.quantile(q, buckets)
    assert got == (None if expected is None else pytest.approx(expected))


def test_error_rate_test_separates_three_times_worse_from_equal():
    _, p_equal = stats.error_rate_test(10, 1000, 10, 1000)
    _, p_worse = stats.error_rate_test(30, 1000, 10, 1000)
    assert p_equal > 0.3 and p_worse < 0.01


def test_latency_test_detects_a_shift_and_not_noise():
    _, p_same = stats.latency_test(hist(50, 30, 15, 4, 1, 0), hist(52, 29, 14, 4, 1, 0))
    _, p_slow = stats.latency_test(hist(5, 10, 40, 30, 15, 0), hist(50, 30, 15, 4, 1, 0))
    assert p_same > 0.05 and p_slow < 1e-6


def test_latency_test_refuses_different_bounds():
    with pytest.raises(ValueError, match="different bucket bounds"):
        stats.latency_test(hist(1, 1, 1, 1, 1, 1), ((0.1, 1), (math.inf, 2)))
