"""The shadow step's verdict: paired disagreement against the spec's limit, three-way."""
import numpy as np
import pytest

from modelrollout.analysis import ERROR, FAIL, INCONCLUSIVE, PASS
from modelrollout.shadow import ShadowSample, ShadowSpec, judge_shadow, shadow_alpha

SPEC = ShadowSpec(min_pairs=200, max_disagreement=0.05)


def sample(pairs, disagreements, compared=None, failed=0.0, **kw):
    return ShadowSample({"probabilities": pairs}, {"probabilities": disagreements},
                        pairs if compared is None else compared, failed, **kw)


def test_nothing_mirrored_yet_is_inconclusive():
    assert judge_shadow(SPEC, None, 0.01).outcome == INCONCLUSIVE
    assert judge_shadow(SPEC, sample(0, 0, compared=0), 0.01).outcome == INCONCLUSIVE


def test_a_candidate_that_disagrees_far_more_than_allowed_fails_early():
    v = judge_shadow(SPEC, sample(60, 20), 0.01)                      # 33% of only 60 pairs
    assert v.outcome == FAIL and v.tested and "33.33% of 60" in v.reason
    assert v.details["outputs"]["probabilities"]["bounds"][0] > 0.05


def test_an_agreeing_candidate_passes_only_with_enough_pairs():
    assert judge_shadow(SPEC, sample(150, 0), 0.01).outcome == INCONCLUSIVE     # < minPairs
    v = judge_shadow(SPEC, sample(400, 4), 0.01)
    assert v.outcome == PASS and "1.00% of 400" in v.reason


def test_near_the_limit_it_waits_for_more_pairs():
    v = judge_shadow(SPEC, sample(400, 18), 0.01)                     # 4.5%: neither side significant
    assert v.outcome == INCONCLUSIVE and "not yet significantly below" in v.reason


def test_many_rows_per_request_count_as_fewer_independent_pairs():
    """400 pairs from 20 requests of 20 rows: as informative as 20 pairs at most."""
    v = judge_shadow(SPEC, sample(400, 4, compared=20), 0.01)
    assert v.outcome == INCONCLUSIVE and v.details["outputs"]["probabilities"]["designEffect"] == 20
    assert judge_shadow(SPEC, sample(400, 4, compared=400), 0.01).outcome == PASS


def test_a_mirror_that_mostly_fails_is_an_error_not_a_verdict():
    v = judge_shadow(SPEC, sample(8, 0, compared=4, failed=16), 0.01)
    assert v.outcome == ERROR and "answered 4 of 20" in v.reason


def test_outputs_without_counted_disagreements_cannot_pass():
    v = judge_shadow(SPEC, ShadowSample({"raw": 500.0}, {}, 500, 0), 0.01)
    assert v.outcome == INCONCLUSIVE and "predictions" in v.reason


def test_the_worst_output_decides():
    s = ShadowSample({"a": 500, "b": 500}, {"a": 2, "b": 100}, 500, 0)
    v = judge_shadow(SPEC, s, 0.01)
    assert v.outcome == FAIL and "output b" in v.reason


def test_malformed_counts_are_refused():
    assert "more disagreements than pairs" in judge_shadow(SPEC, sample(10, 11), 0.01).reason
    assert "not finite" in judge_shadow(SPEC, sample(float("nan"), 1), 0.01).reason


def test_the_looks_spend_exactly_their_share():
    looks = [shadow_alpha(0.05, 0.2, k) for k in range(1, 10_000)]
    assert sum(looks) == pytest.approx(0.05 * 0.2, rel=1e-3) and looks[0] == pytest.approx(0.005)


def test_false_fails_stay_within_the_looks_budget():
    """A candidate exactly at the limit, looked at 10 times as its pairs grow: the share of runs
    that fail stays under the budget those looks spend."""
    rng = np.random.default_rng(7)
    runs, fails, spent = 400, 0, sum(shadow_alpha(0.05, 1.0, k) for k in range(1, 11))
    for _ in range(runs):
        d = np.cumsum(rng.random(2000) < 0.05)
        for k, n in enumerate(range(200, 2001, 200), start=1):
            if judge_shadow(SPEC, sample(n, float(d[n - 1])), shadow_alpha(0.05, 1.0, k)).outcome == FAIL:
                fails += 1
                break
    assert fails / runs <= spent
