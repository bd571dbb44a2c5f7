"""Canary-vs-stable statistics with scipy. Pure functions of counts and histogram buckets.

Buckets are Prometheus-style: a sequence of (upper bound `le` in seconds, cumulative count),
ending with +Inf, as `increase(..._bucket[window])` returns them.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

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
    """A distribution-free interval for the q-quantile: the ranks an order statistic of n
    requests takes with the given confidence (binomial), read off the histogram as quantile() does."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None, None
    n, alpha = round(total), 1.0 - confidence
    low_rank = float(stats.binom.ppf(alpha / 2, n, q))
    high_rank = min(float(n), float(stats.binom.ppf(1 - alpha / 2, n, q)) + 1)
    return quantile(low_rank / n, buckets), quantile(high_rank / n, buckets)


def error_rate_test(canary_errors: float, canary_total: float, stable_errors: float, stable_total: float) -> tuple[float, float]:
    """One-sided Fisher exact test that the canary's error proportion exceeds stable's.
    Returns (odds ratio, p-value)."""
    table = [[round(canary_errors), round(canary_total - canary_errors)],
             [round(stable_errors), round(stable_total - stable_errors)]]
    result = stats.fisher_exact(table, alternative="greater")
    return float(result.statistic), float(result.pvalue)


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


def excess_error_test(canary_errors: float, canary_total: float, stable_errors: float, stable_total: float,
                      margin: float) -> float:
    """One-sided p-value that the canary's error rate exceeds stable's by more than `margin`
    (a Wald z-test on the difference; the non-inferiority form of error_rate_test)."""
    pc, ps = canary_errors / max(canary_total, 1.0), stable_errors / max(stable_total, 1.0)
    se = math.sqrt(pc * (1 - pc) / max(canary_total, 1.0) + ps * (1 - ps) / max(stable_total, 1.0))
    if se == 0:
        return 0.0 if pc - ps > margin else 1.0
    return float(stats.norm.sf((pc - ps - margin) / se))


def _per_bucket(buckets: Buckets) -> np.ndarray:
    cumulative = np.array([c for _, c in buckets], dtype=float)
    return np.round(np.diff(cumulative, prepend=0.0)).clip(min=0).astype(np.int64)


def latency_test(canary: Buckets, stable: Buckets, max_samples: int = 200_000) -> tuple[float, float]:
    """One-sided Mann-Whitney U test that canary latencies are larger than stable's, on the
    bucket index of each request (ties within a bucket are handled by the test).
    Returns (U statistic, p-value). Counts are scaled down proportionally above max_samples."""
    if [b for b, _ in canary] != [b for b, _ in stable]:
        raise ValueError("canary and stable histograms have different bucket bounds")
    counts_c, counts_s = _per_bucket(canary), _per_bucket(stable)
    scale = max(1.0, (counts_c.sum() + counts_s.sum()) / max_samples)
    if scale > 1:
        counts_c, counts_s = np.round(counts_c / scale).astype(np.int64), np.round(counts_s / scale).astype(np.int64)
    idx = np.arange(len(counts_c))
    x, y = np.repeat(idx, counts_c), np.repeat(idx, counts_s)
    if len(x) == 0 or len(y) == 0:
        return float("nan"), 1.0
    result = stats.mannwhitneyu(x, y, alternative="greater")
    return float(result.statistic), float(result.pvalue)
