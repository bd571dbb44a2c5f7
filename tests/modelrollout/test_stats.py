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


def test_events_spread_evenly_over_time_have_no_time_design_effect():
    assert stats.cluster_design_effect([(2, 100)] * 10) == 1.0
    rng = np.random.default_rng(7)             # binomial noise alone: about 1, however it falls
    effects = [stats.cluster_design_effect([(rng.binomial(100, 0.05), 100) for _ in range(10)]) for _ in range(400)]
    assert 0.8 < float(np.mean(effects)) < 1.3


def test_events_in_one_slice_count_as_about_one_slice_of_evidence():
    """20 slow requests all in one of ten slices of 100: a stall, not twenty independent events."""
    effect = stats.cluster_design_effect([(20, 100)] + [(0, 100)] * 9)
    assert effect > 15
    assert stats.cluster_design_effect([(0, 100), (0, 0)]) == 1.0      # no events, empty slices: nothing to say


@pytest.mark.parametrize("planned", [1, 3, 9])
def test_looks_never_spend_more_than_alpha_however_many_there_are(planned):
    shares = [stats.look_alpha(0.05, planned, look) for look in range(1, 10_000)]
    assert sum(shares) <= 0.05
    assert sum(shares[:planned]) == pytest.approx(0.05 * 0.75)          # planned looks share 75%, growing
    assert all(b >= a for a, b in zip(shares[:planned], shares[1:planned]))
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
