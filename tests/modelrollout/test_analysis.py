import dataclasses
import math

import pytest

from modelrollout.analysis import ERROR, FAIL, INCONCLUSIVE, PASS, Measurements, VersionSample, judge
from modelrollout.spec import AnalysisSpec, DriftSpec

SPEC = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.05, max_latency_p99=0.25)
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, math.inf)
FAST = (300, 400, 200, 80, 15, 5, 0, 0)      # p99 around 0.1 s
SLOW = (10, 40, 150, 300, 300, 180, 20, 0)   # p99 around 0.25 s


def sample(requests, errors, shape=FAST, age=0.0):
    scale = requests / sum(shape)
    total, buckets = 0.0, []
    for bound, n in zip(BOUNDS, shape):
        total += n * scale
        buckets.append((bound, total))
    return VersionSample(requests, errors, tuple(buckets), age)


@pytest.mark.parametrize("name, m, outcome, words", [
    ("prometheus down", Measurements(None, None, error="connection refused"), ERROR, "metrics unavailable"),
    ("no canary series", Measurements(None, sample(1000, 5)), INCONCLUSIVE, "no series"),
    ("low traffic", Measurements(sample(50, 0), sample(1000, 5)), INCONCLUSIVE, "too few canary requests"),
    ("stale data", Measurements(sample(1000, 5, age=600), sample(1000, 5)), INCONCLUSIVE, "stale"),
    ("equal rates", Measurements(sample(1000, 10), sample(1000, 10)), PASS, "passed"),
    ("three times stable's errors", Measurements(sample(2000, 60), sample(2000, 20)), FAIL, "worse than stable"),
    ("over the absolute error gate", Measurements(sample(1000, 80), sample(1000, 80)), FAIL, "exceeds 0.05"),
    ("latency shift under the absolute gate", Measurements(sample(2000, 0, SLOW), sample(2000, 0)), FAIL, "p99"),
    ("no stable traffic to compare", Measurements(sample(1000, 2), None), INCONCLUSIVE, "too little stable traffic"),
    ("too little stable traffic", Measurements(sample(1000, 2), sample(50, 0)), INCONCLUSIVE, "50 < 200 requests"),
    ("stale stable", Measurements(sample(1000, 2), sample(1000, 2, age=600)), INCONCLUSIVE, "stable metrics are stale"),
])
def test_verdicts(name, m, outcome, words):
    verdict = judge(SPEC, m)
    assert verdict.outcome == outcome, (name, verdict.reason)
    assert words in verdict.reason


def test_absolute_latency_gate():
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=10, max_latency_p99=0.05, compare_to_stable=False)
    verdict = judge(spec, Measurements(sample(1000, 0, SLOW), None))
    assert verdict.outcome == FAIL and "exceeds 50ms" in verdict.reason


def test_the_verdict_records_values_sample_sizes_and_statistics():
    verdict = judge(SPEC, Measurements(sample(1000, 10), sample(3000, 30), queries={"canary_requests": "q"}))
    status = verdict.to_status("2026-01-01T00:00:00Z")
    for key in ("verdict", "requests", "errorRate", "latencyP99", "stableRequests", "errorPValue", "latencyPValue", "queries"):
        assert key in status
    assert status["requests"] == 1000 and status["stableRequests"] == 3000


NAN = float("nan")


@pytest.mark.parametrize("name, m, words", [
    ("NaN requests", Measurements(VersionSample(NAN, 0, sample(1000, 0).buckets), sample(1000, 5)), "not finite"),
    ("NaN bucket", Measurements(VersionSample(1000, 0, ((0.1, NAN), (math.inf, 1000))), sample(1000, 5)), "bucket count"),
    ("errors > requests", Measurements(sample(1000, 2000), sample(1000, 5)), "more errors than requests"),
    ("stable reset", Measurements(sample(1000, 5), VersionSample(1000, 5, ((0.1, 900), (math.inf, 10)))), "decrease"),
    ("no shared bounds", Measurements(sample(1000, 5), VersionSample(1000, 5, ((0.3, 900), (math.inf, 1000)))),
     "share no bucket bounds"),
])
def test_measurement_faults_are_inconclusive_with_a_reason_never_an_exception(name, m, words):
    verdict = judge(SPEC, m)
    assert verdict.outcome == INCONCLUSIVE and words in verdict.reason, (name, verdict.reason)


def test_histograms_with_different_bounds_are_compared_at_the_bounds_they_share():
    rebinned = VersionSample(1000, 5, tuple((b, c) for b, c in sample(1000, 5, SLOW).buckets if b != 0.025))
    verdict = judge(AnalysisSpec(prometheus_url="http://p", min_requests=200, max_latency_p99=None, max_error_rate=0.05),
                    Measurements(rebinned, sample(1000, 5)))
    assert verdict.outcome == FAIL and "p99" in verdict.reason


def test_prometheus_warnings_are_kept_with_the_verdict():
    m = Measurements(sample(1000, 5), sample(1000, 5), warnings=("PromQL info: metric might not be a counter",))
    assert judge(SPEC, m).details["warnings"] == ["PromQL info: metric might not be a counter"]


@pytest.mark.parametrize("true_rate, wrong, outcome_never_wanted", [
    (0.005, 0.03, FAIL),       # half the limit: the point-estimate gate failed 8% of these (operator-review C18)
    (0.02, 0.03, PASS),        # twice the limit: the point-estimate gate passed 23.5%
])
def test_the_absolute_error_gate_judges_on_bounds_so_either_mistake_stays_rare(true_rate, wrong, outcome_never_wanted):
    import numpy as np
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.01, max_latency_p99=None,
                        compare_to_stable=False)
    errors = np.random.default_rng(7).binomial(200, true_rate, size=2000)
    outcomes = [judge(spec, Measurements(sample(200, int(e)), None)).outcome for e in errors]
    assert outcomes.count(outcome_never_wanted) / len(outcomes) <= wrong
    assert set(outcomes) <= {PASS, FAIL, INCONCLUSIVE}


def test_a_p99_over_the_limit_only_by_chance_is_inconclusive_not_a_fail():
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=50, max_error_rate=0.5, max_latency_p99=0.3,
                        compare_to_stable=False)
    small = judge(spec, Measurements(sample(60, 0, SLOW), None))      # p99 about 0.37 s, from 60 requests
    large = judge(spec, Measurements(sample(100_000, 0, SLOW), None))
    assert small.outcome == INCONCLUSIVE and "upper bound" in small.reason
    assert large.outcome == FAIL and "lower bound" in large.reason


def test_a_negligible_error_difference_at_high_traffic_passes_within_the_margin():
    canary, stable = sample(1_000_000, 1_150), sample(1_000_000, 1_000)       # 0.115% against 0.100%
    strict = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_latency_p99=None)
    assert judge(strict, Measurements(canary, stable)).outcome == FAIL
    lenient = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_latency_p99=None, error_rate_margin=0.0005)
    verdict = judge(lenient, Measurements(canary, stable))
    assert verdict.outcome == PASS and verdict.details["errorExcessPValue"] > 0.5
    worse = sample(1_000_000, 2_000)                                        # 0.2%: beyond the margin
    assert judge(lenient, Measurements(worse, stable)).outcome == FAIL


def batched(s: VersionSample, *passes: int) -> VersionSample:
    """s with the predictor's batch counters for forward passes of these request counts."""
    return dataclasses.replace(s, batched=float(sum(passes)), peers=float(sum(n * n for n in passes)))


def test_one_failed_batch_is_one_failure_not_eight():
    """A batch of 8 fails whole: 8 errors, but one event. Taken as 8 independent failures they
    'prove' the canary worse than stable; divided by the batch design effect they do not."""
    canary = batched(sample(1000, 8), *[8] * 125)                # one of 125 passes failed
    stable = batched(sample(20_000, 16), *[8] * 2500)            # two of 2,500 passes failed
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.2, max_latency_p99=None)
    verdict = judge(spec, Measurements(canary, stable))
    assert verdict.outcome == PASS, verdict.reason
    assert verdict.details["designEffects"] == [8, 8]
    unbatched = judge(spec, Measurements(sample(1000, 8), sample(20_000, 16)))
    assert unbatched.outcome == FAIL                            # the same counts without batch counters


def test_a_tail_regression_fails_even_when_most_requests_are_faster():
    """The canary is faster for 95% of requests but its slowest 3% take 0.25-0.5 s: the tail
    share above stable's p99 bound shows it (a rank test on all requests saw a faster canary)."""
    faster_with_a_tail = (400, 400, 120, 40, 10, 0, 30, 0)
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.05, max_latency_p99=None)
    verdict = judge(spec, Measurements(sample(2000, 0, faster_with_a_tail), sample(2000, 0)))
    assert verdict.outcome == FAIL and "slower than" in verdict.reason, verdict.reason
    assert verdict.details["tailShares"][0] > 0.02 > verdict.details["tailShares"][1]


def over_time(*slices: tuple[int, ...]) -> VersionSample:
    """A window told slice by slice: per-bucket counts (BOUNDS) of each stretch of it."""
    def cumulative(counts):
        return tuple((b, float(sum(counts[:i + 1]))) for i, b in enumerate(BOUNDS))
    whole = cumulative([sum(c) for c in zip(*slices)])
    return VersionSample(whole[-1][1], 0, whole, slices=tuple(cumulative(c) for c in slices))


STABLE_OVER_TIME = over_time(*[(20, 58, 1, 1, 0, 0, 0, 0)] * 8, *[(20, 57, 1, 1, 1, 0, 0, 0)] * 2)
CALM = (5, 14, 1, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("name, canary, outcome", [
    # 8 of 200 canary requests slower than stable's p99 bound, against 2 of 800 (the CI failure's shape)
    ("all in one stretch: a stall", over_time(*[CALM] * 9, (5, 5, 1, 1, 4, 4, 0, 0)), PASS),
    ("one in most stretches: a regression", over_time(*[CALM] * 2, *[(5, 13, 1, 0, 0, 1, 0, 0)] * 8), FAIL),
])
def test_slow_requests_clustered_in_time_are_one_event(name, canary, outcome):
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=100, max_error_rate=0.05, max_latency_p99=None)
    verdict = judge(spec, Measurements(canary, STABLE_OVER_TIME))
    assert verdict.outcome == outcome, (name, verdict.reason)
    assert verdict.details["tailShares"][0] == 0.04
    without_slices = dataclasses.replace(canary, slices=())
    assert judge(spec, Measurements(without_slices, STABLE_OVER_TIME)).outcome == FAIL    # counted as independent


def test_the_error_test_judges_the_whole_rollout_so_far():
    """Each window alone is not enough evidence (p > alpha), the rollout's requests together are."""
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.05, max_latency_p99=None)
    window = Measurements(sample(2000, 12), sample(20_000, 60))        # 0.6% against 0.3%
    first = judge(spec, window, alpha=0.005)
    assert first.outcome == PASS and first.details["errorEvidence"] == {"canary": [2000, 12], "stable": [20000, 60]}
    evidence = first.details["errorEvidence"]
    for _ in range(3):
        later = judge(spec, window, alpha=0.005, evidence=evidence)
        evidence = later.details["errorEvidence"]
    assert later.outcome == FAIL and "rollout so far" in later.reason
    assert evidence["canary"] == [8000, 48]


def test_an_untestable_look_spends_nothing_and_keeps_no_evidence():
    verdict = judge(SPEC, Measurements(sample(50, 0), sample(1000, 5)), alpha=0.001)
    assert not verdict.tested and "errorEvidence" not in verdict.details
    assert judge(SPEC, Measurements(sample(1000, 5), sample(1000, 5)), alpha=0.001).tested


def test_a_look_fails_only_below_its_own_share_of_alpha():
    canary, stable = sample(2000, 40), sample(2000, 20)                # p about 0.006
    p = judge(SPEC, Measurements(canary, stable)).details["errorPValue"]
    assert judge(SPEC, Measurements(canary, stable), alpha=p * 2).outcome == FAIL
    assert judge(SPEC, Measurements(canary, stable), alpha=p / 2).outcome == PASS


DRIFT = AnalysisSpec(prometheus_url="http://p", min_requests=100, max_error_rate=0.05, max_latency_p99=None,
                     prediction_drift=DriftSpec(max_distance=0.1, min_predictions=100))


def predicting(s: VersionSample, **outputs: dict) -> VersionSample:
    return dataclasses.replace(s, predictions=outputs)


@pytest.mark.parametrize("name, canary, stable, outcome, words", [
    ("the same shares", {"malignant": 370, "benign": 630}, {"malignant": 1480, "benign": 2520}, PASS, "passed"),
    # cancer v2 against v1 (69% benign against 63%: distance 0.05) in a small window whose sample
    # put the estimate past 0.1: the bound says it may be noise
    ("a small window's noisy estimate", {"malignant": 80, "benign": 104}, {"malignant": 229, "benign": 531},
     INCONCLUSIVE, "may differ"),
    ("a large shift", {"malignant": 70, "benign": 930}, {"malignant": 1480, "benign": 2520},
     FAIL, "Jensen-Shannon distance 0.319, at least 0.29"),
    ("too few canary predictions", {"malignant": 20, "benign": 30}, {"malignant": 1480, "benign": 2520},
     INCONCLUSIVE, "too few predictions of 'probabilities'"),
])
def test_the_drift_gate_fails_only_when_the_distance_is_past_the_limit_with_confidence(name, canary, stable, outcome, words):
    m = Measurements(predicting(sample(1000, 2), probabilities=canary), predicting(sample(4000, 8), probabilities=stable))
    verdict = judge(DRIFT, m)
    assert verdict.outcome == outcome and words in verdict.reason, (name, verdict.reason)
    drift = verdict.details["predictionDrift"].get("probabilities")
    assert drift is None or drift["lowerBound"] <= drift["distance"]


def test_the_drift_gate_without_counted_predictions_is_inconclusive_and_off_by_default():
    m = Measurements(sample(1000, 2), sample(4000, 8))
    assert judge(DRIFT, m).outcome == INCONCLUSIVE and "declares no `predictions`" in judge(DRIFT, m).reason
    shifted = Measurements(predicting(sample(1000, 2), p={"a": 900, "b": 100}), predicting(sample(4000, 8), p={"a": 100, "b": 3900}))
    assert judge(SPEC, shifted).outcome == PASS                      # no predictionDrift in the spec: not judged


def test_each_output_is_judged_and_shares_the_looks_alpha():
    canary = predicting(sample(1000, 2), a={"x": 500, "y": 500}, b={"lo": 50, "hi": 950})
    stable = predicting(sample(4000, 8), a={"x": 2000, "y": 2000}, b={"lo": 2000, "hi": 2000})
    verdict = judge(DRIFT, Measurements(canary, stable))
    assert verdict.outcome == FAIL and "'b' predictions" in verdict.reason
    assert verdict.details["predictionDrift"]["a"]["distance"] == 0.0
