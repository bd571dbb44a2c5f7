import dataclasses
import math

import numpy as np
import pytest

from modelrollout.analysis import ERROR, FAIL, INCONCLUSIVE, PASS, Measurements, Scrape, VersionSample, judge
from modelrollout.spec import AnalysisSpec, DriftSpec

SPEC = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.05, max_latency_p99=0.25,
                    error_rate_margin=0.0)
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, math.inf)
FAST = (300, 400, 200, 80, 15, 5, 0, 0)      # p99 around 0.1 s
SLOW = (10, 40, 150, 300, 300, 180, 20, 0)   # p99 around 0.25 s


def cumulative(counts) -> tuple:
    return tuple((b, float(sum(counts[:i + 1]))) for i, b in enumerate(BOUNDS))


def over_scrapes(*scrapes: tuple[tuple[int, ...], int]) -> VersionSample:
    """A window told scrape by scrape: (per-bucket counts of successes, errors) of each."""
    parts = tuple(Scrape(float(sum(c) + e), float(e), cumulative(c)) for c, e in scrapes)
    return VersionSample(sum(p.requests for p in parts), sum(p.errors for p in parts),
                         cumulative([sum(c) for c in zip(*(c for c, _ in scrapes))]), scrapes=parts)


def sample(requests, errors, shape=FAST, age=0.0, scrapes=4):
    """A window of `requests` (`errors` of them failed), spread evenly over its scrapes."""
    ok = requests - errors
    per = [ok * n / sum(shape) / scrapes for n in shape]
    parts = tuple(Scrape(requests / scrapes, errors / scrapes, cumulative(per)) for _ in range(scrapes))
    return VersionSample(requests, errors, cumulative([n * scrapes for n in per]), age, scrapes=parts)


@pytest.mark.parametrize("name, m, outcome, words", [
    ("prometheus down", Measurements(None, None, error="connection refused"), ERROR, "metrics unavailable"),
    ("no canary series", Measurements(None, sample(1000, 5)), INCONCLUSIVE, "no series"),
    ("low traffic", Measurements(sample(50, 0), sample(1000, 5)), INCONCLUSIVE, "too few canary requests"),
    ("one scrape in the window", Measurements(sample(1000, 5, scrapes=1), sample(1000, 5)), ERROR, "scrapeInterval"),
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
COARSE = VersionSample(1000, 5, ((0.3, 900), (math.inf, 995)),
                       scrapes=tuple(Scrape(250, 1.25, ((0.3, 225), (math.inf, 248.75))) for _ in range(4)))


@pytest.mark.parametrize("name, m, words", [
    ("NaN requests", Measurements(dataclasses.replace(sample(1000, 0), requests=NAN), sample(1000, 5)), "not finite"),
    ("NaN bucket", Measurements(VersionSample(1000, 0, ((0.1, NAN), (math.inf, 1000))), sample(1000, 5)), "bucket count"),
    ("errors > requests", Measurements(sample(1000, 2000), sample(1000, 5)), "more errors than requests"),
    ("stable reset", Measurements(sample(1000, 5), dataclasses.replace(sample(1000, 5), buckets=((0.1, 900), (math.inf, 10)))),
     "decrease"),
    ("no shared bounds", Measurements(sample(1000, 5), COARSE), "share no bucket bounds"),
])
def test_measurement_faults_are_inconclusive_with_a_reason_never_an_exception(name, m, words):
    verdict = judge(SPEC, m)
    assert verdict.outcome == INCONCLUSIVE and words in verdict.reason, (name, verdict.reason)


def test_histograms_with_different_bounds_are_compared_at_the_bounds_they_share():
    slow = sample(1000, 5, SLOW)
    rebin = lambda b: tuple((le, c) for le, c in b if le != 0.025)    # noqa: E731
    rebinned = dataclasses.replace(slow, buckets=rebin(slow.buckets),
                                   scrapes=tuple(dataclasses.replace(x, buckets=rebin(x.buckets)) for x in slow.scrapes))
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
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.01, max_latency_p99=None,
                        compare_to_stable=False)
    errors = np.random.default_rng(7).binomial(200, true_rate, size=2000)
    outcomes = [judge(spec, Measurements(sample(200, int(e)), None)).outcome for e in errors]
    assert outcomes.count(outcome_never_wanted) / len(outcomes) <= wrong
    assert set(outcomes) <= {PASS, FAIL, INCONCLUSIVE}


def test_a_p99_over_the_limit_only_by_chance_is_inconclusive_not_a_fail():
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=50, max_error_rate=0.5, max_latency_p99=0.25,
                        compare_to_stable=False)
    small = judge(spec, Measurements(sample(60, 0, SLOW), None))      # p99 about 0.37 s, from 60 requests
    large = judge(spec, Measurements(sample(100_000, 0, SLOW), None))
    assert small.outcome == INCONCLUSIVE and "up to" in small.reason
    assert large.outcome == FAIL and "above 250ms" in large.reason


def test_p99_bounds_are_bucket_edges_so_a_p99_under_a_limit_inside_its_bucket_never_fails():
    """audit: a true p99 of 245 ms against a 250 ms limit failed 97.5% of looks, bounds having been
    interpolated inside the 220-270 ms bucket. The histogram cannot tell them apart: it passes."""
    edges = (0.1, 0.22, 0.27, 0.5, math.inf)
    rng = np.random.default_rng(3)
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=50, max_error_rate=0.5, max_latency_p99=0.25,
                        compare_to_stable=False)
    outcomes = []
    for _ in range(200):        # the p99 in the 220-270 ms bucket (at 245 ms, say), none beyond it
        n = 20_000
        counts = rng.multinomial(n, (0.975, 0.01, 0.015, 0.0, 0.0))
        buckets = tuple(zip(edges, np.cumsum(counts).astype(float)))
        s = VersionSample(n, 0, buckets, scrapes=tuple(Scrape(n / 4, 0, tuple((le, c / 4) for le, c in buckets))
                                                       for _ in range(4)))
        verdict = judge(spec, Measurements(s, None))
        outcomes.append(verdict.outcome)
    assert outcomes.count(FAIL) == 0 and outcomes.count(PASS) == len(outcomes)
    assert "share the bucket 220ms-270ms" in verdict.details["latencyP99Resolution"]


def test_a_negligible_error_difference_at_high_traffic_passes_within_the_margin():
    canary, stable = sample(1_000_000, 1_150), sample(1_000_000, 1_000)       # 0.115% against 0.100%
    strict = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_latency_p99=None, error_rate_margin=0.0)
    assert judge(strict, Measurements(canary, stable)).outcome == FAIL
    default = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_latency_p99=None)
    assert default.error_rate_margin == 0.0002
    verdict = judge(default, Measurements(canary, stable))
    assert verdict.outcome == PASS and verdict.details["errorExcessPValue"] > 0.5
    worse = sample(1_000_000, 2_000)                                        # 0.2%: beyond the margin
    assert judge(default, Measurements(worse, stable)).outcome == FAIL


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
    assert verdict.details["dispersion"]["canary"]["errors"] == 8 and verdict.details["dispersion"]["stable"]["errors"] == 8
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


STABLE_OVER_TIME = over_scrapes(*[((20, 58, 1, 1, 0, 0, 0, 0), 0)] * 8, *[((20, 57, 1, 1, 1, 0, 0, 0), 0)] * 2)
CALM = ((5, 14, 1, 0, 0, 0, 0, 0), 0)


@pytest.mark.parametrize("name, canary, outcome", [
    # 8 of 200 canary requests slower than stable's p99 bound, against 2 of 800 (the CI failure's shape)
    ("all in one scrape: a stall", over_scrapes(*[CALM] * 9, ((5, 5, 1, 1, 4, 4, 0, 0), 0)), PASS),
    ("one in most scrapes: a regression", over_scrapes(*[CALM] * 2, *[((5, 13, 1, 0, 0, 1, 0, 0), 0)] * 8), FAIL),
])
def test_slow_requests_clustered_in_time_are_one_event(name, canary, outcome):
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=100, max_error_rate=0.05, max_latency_p99=None)
    verdict = judge(spec, Measurements(canary, STABLE_OVER_TIME))
    assert verdict.outcome == outcome, (name, verdict.reason)
    assert verdict.details["tailShares"][0] == 0.04
    without_scrapes = dataclasses.replace(canary, scrapes=())
    assert judge(spec, Measurements(without_scrapes, STABLE_OVER_TIME)).outcome == FAIL    # counted as independent


def test_an_error_burst_in_one_scrape_is_one_event_and_errors_in_every_scrape_are_not():
    """20 errors in one of ten scrapes, against stable's 0.2%: a burst (the audit's 49% false
    rollbacks); the same 20 spread over the scrapes is a canary that fails more."""
    stable = over_scrapes(*[((995, 0, 0, 0, 0, 0, 0, 0), 5)] * 10)
    burst = over_scrapes(((180, 0, 0, 0, 0, 0, 0, 0), 20), *[((200, 0, 0, 0, 0, 0, 0, 0), 0)] * 9)
    steady = over_scrapes(*[((198, 0, 0, 0, 0, 0, 0, 0), 2)] * 10)
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=100, max_error_rate=0.5, max_latency_p99=None)
    assert judge(spec, Measurements(burst, stable)).outcome == PASS
    assert judge(spec, Measurements(steady, stable)).outcome == FAIL


def test_every_gate_runs_so_an_unsettled_absolute_gate_does_not_hide_a_relative_failure():
    """audit: an absolute gate whose interval straddled its limit returned Inconclusive before the
    relative test could run, so a canary twice as bad was never failed."""
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.012, max_latency_p99=None,
                        error_rate_margin=0.0)
    verdict = judge(spec, Measurements(sample(20_000, 240), sample(200_000, 1000)))    # 1.2% against 0.5%
    assert verdict.details["gates"]["absoluteError"] == INCONCLUSIVE
    assert verdict.outcome == FAIL and verdict.details["gates"]["relativeError"] == FAIL


def test_every_window_joins_the_evidence_and_the_error_gates_judge_the_whole_rollout_so_far():
    """Each window alone is not enough evidence (p > alpha), the rollout's requests together are;
    a window with too few requests for a test still joins the evidence."""
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=200, max_error_rate=0.05, max_latency_p99=None,
                        error_rate_margin=0.0)
    window = Measurements(sample(2000, 12), sample(20_000, 60))        # 0.6% against 0.3%
    first = judge(spec, window, alpha=0.005)
    assert first.outcome == PASS
    assert (first.details["evidence"]["canary"]["requests"], first.details["evidence"]["canary"]["errors"]) == (2000, 12)
    evidence = judge(spec, Measurements(sample(100, 1), sample(1000, 3)), evidence=first.details["evidence"]).details["evidence"]
    assert evidence["canary"]["requests"] == 2100
    for _ in range(3):
        later = judge(spec, window, alpha=0.005, evidence=evidence)
        evidence = later.details["evidence"]
    assert later.outcome == FAIL and "rollout so far" in later.reason
    assert (evidence["canary"]["requests"], evidence["canary"]["errors"]) == (8100, 49)


def test_the_step_part_of_the_evidence_starts_again_with_each_step():
    spec = AnalysisSpec(prometheus_url="http://p", min_requests=300, max_error_rate=0.05, max_latency_p99=None)
    at = lambda since: dict(window=("", "", since))    # noqa: E731
    first = judge(spec, Measurements(sample(200, 0), sample(2000, 0), **at("step-1")))
    assert first.outcome == INCONCLUSIVE and "too few canary requests at this step: 200" in first.reason
    second = judge(spec, Measurements(sample(200, 0), sample(2000, 0), **at("step-1")), evidence=first.details["evidence"])
    assert second.outcome == PASS and second.details["requests"] == 400          # the step's two windows
    third = judge(spec, Measurements(sample(200, 0), sample(2000, 0), **at("step-2")), evidence=second.details["evidence"])
    assert third.outcome == INCONCLUSIVE and third.details["evidence"]["canary"]["requests"] == 600


def test_an_untestable_look_spends_nothing():
    verdict = judge(SPEC, Measurements(sample(50, 0), sample(1000, 5)), alpha=0.001)
    assert not verdict.tested and verdict.details["evidence"]["canary"]["requests"] == 50
    assert not judge(SPEC, Measurements(None, None, error="down")).tested
    assert judge(SPEC, Measurements(sample(1000, 5), sample(1000, 5)), alpha=0.001).tested


def test_a_gate_fails_only_below_its_own_share_of_the_looks_alpha():
    """The relative error gate has 2 of the 6 weights of the gates that run (absolute error 1,
    absolute latency 1, relative error 2, relative latency 2)."""
    canary, stable = sample(2000, 40), sample(2000, 20)                # p about 0.006
    p = judge(SPEC, Measurements(canary, stable)).details["errorPValue"]
    assert judge(SPEC, Measurements(canary, stable), alpha=p * 3 * 1.1).outcome == FAIL
    assert judge(SPEC, Measurements(canary, stable), alpha=p * 3 * 0.9).outcome == PASS


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
     FAIL, "Jensen-Shannon distance 0.319, at least 0.28"),
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


def test_what_a_provider_cannot_measure_is_said_and_its_gates_do_not_run():
    """A custom provider without a latency query: no latency gate runs (none passes silently), and
    the verdict says what was not measured."""
    from modelrollout.sources import CustomQueries, MetricsSpec
    spec = dataclasses.replace(SPEC, max_latency_p99=None, metrics=MetricsSpec("custom", custom=CustomQueries("r", "e")))
    lacks = ("latency: no latency template, no latency gates",)
    no_latency = dataclasses.replace(sample(2000, 0), buckets=())
    verdict = judge(spec, Measurements(no_latency, dataclasses.replace(sample(2000, 0), buckets=()), lacks=lacks))
    assert verdict.outcome == PASS, verdict.reason
    assert set(verdict.details["gates"]) == {"absoluteError", "relativeError"}
    assert verdict.details["notMeasured"] == list(lacks)
