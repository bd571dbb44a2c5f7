import math

import numpy as np
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


def test_proportion_test_separates_three_times_worse_from_equal():
    _, p_equal = stats.proportion_test(10, 1000, 10, 1000)
    _, p_worse = stats.proportion_test(30, 1000, 10, 1000)
    assert p_equal > 0.3 and p_worse < 0.01


@pytest.mark.parametrize("passes, expected", [
    ([1] * 100, 1.0),                  # unbatched: every request its own evidence
    ([4] * 25, 4.0),                   # batches of 4: a failure comes four at a time
    ([1] * 50 + [50], 50 * 50 / 100 + 0.5),   # half the requests rode in one large batch
])
def test_design_effect_is_the_size_biased_batch_size(passes, expected):
    assert stats.design_effect(sum(passes), sum(n * n for n in passes)) == pytest.approx(expected)


def test_design_effect_without_batch_counts_is_one():
    assert stats.design_effect(0, 0) == 1.0


def test_pearson_dispersion_is_about_one_for_binomial_noise_and_large_for_a_burst():
    rng = np.random.default_rng(7)
    ratios = [x2 / df for x2, df in (stats.pearson_dispersion([(rng.binomial(100, 0.05), 100) for _ in range(10)])
                                     for _ in range(400))]
    assert 0.8 < float(np.mean(ratios)) < 1.2
    x2, df = stats.pearson_dispersion([(20, 100)] + [(0, 100)] * 9)       # 20 events in one of ten scrapes
    assert df == 9 and x2 / df > 15
    assert stats.pearson_dispersion([(0, 100), (0, 0)]) == (0.0, 0)      # no events: nothing to say


def test_pearson_from_sums_adds_up_windows_without_keeping_their_scrapes():
    clusters = [(3, 100), (0, 120), (9, 80), (1, 100)]
    squares = sum(a * a / n for a, n in clusters)
    x2, df = stats.pearson_from_sums(squares, 13, 400, 4)
    assert (x2, df) == pytest.approx(stats.pearson_dispersion(clusters))


@pytest.mark.parametrize("x2, df, floor, expected", [
    (8.0 * 9, 9, 8.0, 8.0),              # as spread as batches of 8 explain: the batch design effect
    (3.0, 9, 1.0, 1.0),                  # less spread than the binomial: never below the floor
    (200.0, 9, 8.0, 200.0 / 4.168),      # far more: the upper 90% bound of X²/df, not its point estimate
    (50.0, 0, 3.0, 3.0),                 # no degrees of freedom: nothing measured
])
def test_the_dispersion_is_raised_past_the_batch_effect_only_when_the_scrapes_show_more(x2, df, floor, expected):
    assert stats.dispersion_bound(x2, df, floor) == pytest.approx(expected, rel=1e-3)


def test_the_excess_test_keeps_its_level_and_finds_a_canary_far_past_the_margin():
    rng = np.random.default_rng(5)
    at_margin = [stats.excess_error_test(rng.binomial(5000, 0.0025), 5000, rng.binomial(50_000, 0.002), 50_000, 0.0005)
                 for _ in range(2000)]
    assert np.mean(np.array(at_margin) < 0.05) < 0.07            # 0.05 points worse, the margin: rejected at ~5%
    assert stats.excess_error_test(90, 5000, 100, 50_000, 0.0005) < 1e-6   # 1.8% against 0.2%
    assert stats.excess_error_test(11, 5000, 100, 50_000, 0.0005) > 0.5    # 0.22%: within the margin


@pytest.mark.parametrize("shape, limit, bounds", [
    ((970, 20, 10, 0, 0, 0), 0.01, (0.005, 0.025)),          # the p99 among 0.01-0.025: edges, not interpolation
    ((100, 0, 0, 0, 0, 0), 0.01, (0.0, 0.005)),
    ((0, 0, 0, 0, 0, 100), 0.01, (0.1, math.inf)),           # past the last finite bound: unbounded above
])
def test_quantile_bounds_are_bucket_edges(shape, limit, bounds):
    assert stats.quantile_bounds(0.99, hist(*shape), 0.9) == bounds
    assert stats.bucket_holding(hist(*shape), 0.02) == (0.01, 0.025)


@pytest.mark.parametrize("planned", [1, 3, 9])
def test_looks_never_spend_more_than_alpha_however_many_there_are(planned):
    shares = [stats.look_alpha(0.05, planned, look) for look in range(1, 10_000)]
    assert sum(shares) <= 0.05
    assert sum(shares[:planned]) == pytest.approx(0.05 * 0.75)          # planned looks share 75%, equally
    assert len(set(shares[:planned])) == 1
    assert all(b < a for a, b in zip(shares[planned:], shares[planned + 1:]))   # extras: ever smaller


def test_count_above_reads_a_shared_bound_exactly():
    assert stats.count_above(hist(50, 30, 15, 4, 1, 0), 0.025) == 5


def test_distribution_shift_is_zero_for_the_same_shares_and_one_for_disjoint_ones():
    assert stats.distribution_shift({"a": 30, "b": 70}, {"a": 300, "b": 700}, 0.95)[0] == pytest.approx(0.0, abs=1e-9)
    distance, low = stats.distribution_shift({"a": 100, "b": 0}, {"a": 0, "b": 100}, 0.95)
    assert distance == pytest.approx(1.0) and low == pytest.approx(1.0)
    assert stats.distribution_shift({"a": 5}, {"a": 9, "c": 0}, 0.95) == (0.0, 0.0)      # one bin: nothing to compare


def test_the_lower_bound_rarely_passes_a_limit_the_true_distance_is_under():
    """Two versions 0.05 apart in truth (cancer v1 and v2), 180 canary and 720 stable predictions:
    the estimate passes 0.1 now and then, its 95% lower bound at most 5% of the time."""
    rng = np.random.default_rng(11)
    looks = [stats.distribution_shift({"b": (c := rng.binomial(180, 0.633)), "m": 180 - c},
                                      {"b": (s := rng.binomial(720, 0.689)), "m": 720 - s}, 0.95, draws=500)
             for _ in range(200)]
    assert sum(low > 0.1 for _, low in looks) <= 10 and all(low <= d for d, low in looks)
