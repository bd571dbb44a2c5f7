"""Canary-vs-stable statistics with scipy. Pure functions of counts and histogram buckets.

Buckets are Prometheus-style: a sequence of (upper bound `le` in seconds, cumulative count),
ending with +Inf, as `increase(..._bucket[window])` returns them.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy import optimize, stats
from scipy.spatial.distance import jensenshannon

Buckets = Sequence[tuple[float, float]]


def quantile(q: float, buckets: Buckets) -> float | None:
    """The q-quantile by linear interpolation inside the bucket, as PromQL's histogram_quantile."""
    if not buckets:
        return None
    bounds = [b for b, _ in buckets]
    counts = [c for _, c in buckets]
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    for i, (bound, cumulative) in enumerate(zip(bounds, counts)):
        if cumulative >= rank:
            if math.isinf(bound):  # the quantile lies past the last finite bound
                return bounds[i - 1] if i > 0 else None
            lower = bounds[i - 1] if i > 0 else 0.0
            below = counts[i - 1] if i > 0 else 0.0
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside > 0 else 1.0)
    return bounds[-2] if len(bounds) > 1 else None


def proportion_bounds(events: float, total: float, confidence: float) -> tuple[float, float]:
    """Wilson interval of a proportion: the absolute error gate compares these bounds, not the
    point estimate, with its limit."""
    n = max(1, round(total))
    k = min(n, max(0, round(events)))
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def quantile_bounds(q: float, buckets: Buckets, confidence: float) -> tuple[float | None, float | None]:
    """A distribution-free interval for the q-quantile read off bucket edges, never inside a bucket:
    with the given confidence the quantile lies between the order statistics of ranks r and s of n
    requests (binomial), and those lie in known buckets, so the quantile is above the lower edge of
    r's bucket and at most the upper edge of s's (inf past the last finite bound). Interpolating
    inside a bucket assumes a shape the histogram does not know: a p99 of 245ms in a 220-270ms
    bucket failed a 250ms limit in most looks."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None, None
    n, alpha = max(1, round(total)), 1.0 - confidence
    low_rank = max(1.0, float(stats.binom.ppf(alpha / 2, n, q))) * total / n
    high_rank = min(float(n), float(stats.binom.ppf(1 - alpha / 2, n, q)) + 1) * total / n
    low = next((i for i, (_, c) in enumerate(buckets) if c >= low_rank - 1e-9), len(buckets) - 1)
    high = next((i for i, (_, c) in enumerate(buckets) if c >= high_rank - 1e-9), len(buckets) - 1)
    return (buckets[low - 1][0] if low > 0 else 0.0), buckets[high][0]


def bucket_holding(buckets: Buckets, value: float) -> tuple[float, float]:
    """(lower edge, upper edge) of the bucket `value` falls in."""
    below = 0.0
    for le, _ in buckets:
        if value <= le:
            return below, le
        below = le
    return below, math.inf


def proportion_test(k1: float, n1: float, k2: float, n2: float) -> tuple[float, float]:
    """One-sided Fisher exact test that proportion k1/n1 exceeds k2/n2 (errors among requests,
    or requests slower than a bound). Returns (odds ratio, p-value)."""
    table = [[round(k1), round(n1 - k1)], [round(k2), round(n2 - k2)]]
    result = stats.fisher_exact(table, alternative="greater")
    return float(result.statistic), float(result.pvalue)


def design_effect(batched: float, peers: float) -> float:
    """How many requests' worth of information one request carries at most, given how they were
    batched: the requests of one forward pass share its failure and its latency, so they are not
    independent. batched = sum of requests per forward pass, peers = sum of its square; their
    ratio is the size-biased batch size, the design effect of perfectly correlated clusters
    (Kish). Dividing counts by it (Rao-Scott) keeps the tests valid when a whole batch fails."""
    return max(1.0, peers / batched) if batched > 0 and math.isfinite(peers) else 1.0


def pearson_dispersion(clusters: Sequence[tuple[float, float]]) -> tuple[float, int]:
    """(X², df) of (events, total) per cluster (one scrape of one pod) against their pooled
    proportion. X²/df estimates the dispersion: how much the variance of a proportion exceeds the
    binomial's because events come together (a failed batch, an error burst, a stall). Summed over
    windows, X²/df pools the estimate over the rollout. (0, 0) when a window cannot tell: fewer
    than two clusters, or no events or no non-events."""
    used = [(min(a, n), n) for a, n in clusters if n > 0]
    events, total = sum(a for a, _ in used), sum(n for _, n in used)
    if len(used) < 2 or not 0 < events < total:
        return 0.0, 0
    p = events / total
    x2 = sum((a - p * n) ** 2 / n for a, n in used) / (p * (1 - p))
    return x2, len(used) - 1


def pearson_from_sums(squares: float, events: float, total: float, clusters: int) -> tuple[float, int]:
    """pearson_dispersion of clusters known only by their sums: squares = sum of events²/total per
    cluster, so windows can be added up in status without keeping every scrape."""
    if clusters < 2 or not 0 < events < total:
        return 0.0, 0
    p = events / total
    return max(0.0, squares - events * events / total) / (p * (1 - p)), clusters - 1


def dispersion_bound(x2: float, df: float, floor: float, spread: float = 0.8, confidence: float = 0.9) -> float:
    """The dispersion to divide counts by, given Pearson's X² on df and the batch design effect as
    the floor. Only when X²/floor is beyond chi-square's `spread` quantile (more spread over
    scrapes than batching explains: bursts, stalls) is it raised, and then to the upper
    `confidence` bound of X²/df, not its point estimate: the first windows hold few scrapes, far
    too few to trust a low estimate. (Tuned on bench/analysis_power.py: a 90% pre-test let error
    bursts roll back 5% of healthy rollouts, 80% 3%, at no cost in power.)"""
    if df <= 0 or x2 / floor <= float(stats.chi2.ppf(spread, df)):
        return floor
    return max(floor, x2 / float(stats.chi2.ppf(1.0 - confidence, df)))


def look_alpha(alpha: float, planned: int, look: int, reserve: float = 0.25) -> float:
    """The false-rollback rate one look may spend so a whole rollout spends at most `alpha`
    (Bonferroni over looks, valid however the looks' data overlap). The `planned` looks (one per
    analysed step) share (1 - reserve) equally: the first step's look must be able to stop a
    candidate that fails at once, and the error gates' later looks gain from the evidence
    accumulated, not from alpha. Extra looks, after an Inconclusive or a failure below
    failureLimit, get reserve/(i(i+1)) for the i-th extra, which sums to the reserve however
    many there are."""
    if look <= planned:
        return alpha * (1.0 - reserve) / planned
    extra = look - planned
    return alpha * reserve / (extra * (extra + 1))


def count_above(buckets: Buckets, bound: float) -> float:
    """Observations above `bound`, which must be one of the histogram's bounds (exact there)."""
    at = next(c for le, c in buckets if le == bound)
    return buckets[-1][1] - at


def deflated(buckets: Buckets, effect: float) -> Buckets:
    """A histogram with its counts divided by a design effect (see design_effect)."""
    return tuple((le, c / effect) for le, c in buckets)


def common_bounds(a: Buckets, b: Buckets) -> tuple[Buckets, Buckets]:
    """Both histograms at the bounds they share: a cumulative count at a shared `le` is exact, so
    dropping the others re-bins without approximation (coarser, never wrong)."""
    shared = {le for le, _ in a} & {le for le, _ in b}
    return [x for x in a if x[0] in shared], [x for x in b if x[0] in shared]


def malformed(buckets: Buckets) -> str | None:
    """Why a histogram cannot be used (NaN, negative or decreasing counts), or None."""
    counts = [c for _, c in buckets]
    if any(not math.isfinite(c) or c < 0 for c in counts):
        return "a bucket count is not a finite, non-negative number"
    if any(b < a - 1e-9 for a, b in zip(counts, counts[1:])):
        return "bucket counts decrease (a counter reset inside the window?)"
    return None


def excess_error_test(canary_errors: float, canary_total: float, stable_errors: float, stable_total: float, margin: float) -> float:
    """One-sided p-value that the canary's error rate exceeds stable's by more than `margin`: the
    Farrington-Manning score test (the variance at the rates most likely under the margin, not at
    the observed ones, as Wald's would be: Wald's lost a 10x worse canary for want of power)."""
    nc, ns = max(canary_total, 1.0), max(stable_total, 1.0)
    pc, ps = min(canary_errors / nc, 1.0), min(stable_errors / ns, 1.0)
    if margin >= 1.0:
        return 1.0

    def minus_loglik(q: float) -> float:  # stable's rate q, the canary's q + margin
        qc = min(q + margin, 1 - 1e-12)
        return -(
            canary_errors * math.log(qc)
            + (nc - canary_errors) * math.log(1 - qc)
            + stable_errors * math.log(max(q, 1e-12))
            + (ns - stable_errors) * math.log(max(1 - q, 1e-12))
        )

    q = float(optimize.minimize_scalar(minus_loglik, bounds=(1e-12, 1 - margin - 1e-12), method="bounded").x)
    qc = q + margin
    se = math.sqrt(qc * (1 - qc) / nc + q * (1 - q) / ns)
    if se == 0:
        return 0.0 if pc - ps > margin else 1.0
    return float(stats.norm.sf((pc - ps - margin) / se))


def distribution_shift(canary: Mapping[str, float], stable: Mapping[str, float], confidence: float, draws: int = 2000) -> tuple[float, float]:
    """How far apart two versions' predictions over the same bins are, as the Jensen-Shannon
    distance (base 2: 0 for the same shares, 1 for disjoint ones): (estimate, lower confidence
    bound). The plug-in estimate is biased upwards at small counts (two samples of one
    distribution are never exactly alike), so the bound is the basic bootstrap's (2 x estimate
    minus the upper quantile of multinomial resamples), seeded so a verdict can be reproduced.
    Bins empty in both are left out."""
    bins = sorted(b for b in set(canary) | set(stable) if canary.get(b, 0.0) + stable.get(b, 0.0) > 0)
    c = np.array([canary.get(b, 0.0) for b in bins])
    s = np.array([stable.get(b, 0.0) for b in bins])
    if len(bins) < 2 or c.sum() <= 0 or s.sum() <= 0:
        return 0.0, 0.0
    estimate = float(jensenshannon(c, s, base=2))
    rng = np.random.default_rng(0)
    rc = rng.multinomial(max(1, round(c.sum())), c / c.sum(), size=draws)
    rs = rng.multinomial(max(1, round(s.sum())), s / s.sum(), size=draws)
    resampled = np.nan_to_num(jensenshannon(rc, rs, base=2, axis=1))
    return estimate, max(0.0, 2 * estimate - float(np.quantile(resampled, confidence)))
