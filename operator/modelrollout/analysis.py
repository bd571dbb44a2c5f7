"""Measurements -> a verdict: Pass, Fail, Inconclusive, or Error.

Inconclusive (no data, too few requests, stale or malformed data) never promotes and never
counts as a failure; the planner holds the step and applies the spec's policy after a bounded
time. Error (the metrics source could not be read) is counted apart, against
consecutiveErrorLimit, as Argo Rollouts does.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from . import stats
from .spec import AnalysisSpec

PASS, FAIL, INCONCLUSIVE, ERROR = "Pass", "Fail", "Inconclusive", "Error"


@dataclasses.dataclass(frozen=True)
class VersionSample:
    """One version's traffic over the analysis window."""
    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]   # request latency histogram (le seconds, cumulative)
    age: float = 0.0                           # seconds since the newest scrape of this series


@dataclasses.dataclass(frozen=True)
class Measurements:
    canary: VersionSample | None               # None: no series found
    stable: VersionSample | None
    queries: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None                   # the metrics source could not be read
    warnings: tuple[str, ...] = ()             # what Prometheus warned about while answering


@dataclasses.dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_status(self, at: str) -> dict[str, Any]:
        return {"verdict": self.outcome, "reason": self.reason, "time": at, **self.details}


def _rate(sample: VersionSample) -> float:
    return sample.errors / sample.requests if sample.requests else 0.0


def _fault(name: str, sample: VersionSample) -> str | None:
    numbers = (sample.requests, sample.errors, sample.age)
    if any(not math.isfinite(x) or x < 0 for x in numbers):
        return f"{name} request counts are not finite, non-negative numbers"
    if sample.errors > sample.requests + 1e-9:
        return f"{name} has more errors than requests"
    problem = stats.malformed(sample.buckets)
    return f"{name} latency histogram: {problem}" if problem else None


def judge(spec: AnalysisSpec, m: Measurements) -> Verdict:
    details: dict[str, Any] = {"queries": dict(m.queries)}
    if m.warnings:
        details["warnings"] = list(m.warnings)       # Prometheus's own, e.g. a series that is not a counter
    if m.error:
        return Verdict(ERROR, f"metrics unavailable: {m.error}", details)
    c = m.canary
    if c is None:
        return Verdict(INCONCLUSIVE, "no series found for the canary", details)
    fault = _fault("canary", c) or (m.stable and _fault("stable", m.stable))
    if fault:
        return Verdict(INCONCLUSIVE, f"malformed measurement: {fault}", details)
    p99 = stats.quantile(0.99, c.buckets)
    details.update(requests=round(c.requests), errorRate=round(_rate(c), 6),
                   latencyP99=None if p99 is None else round(p99, 6))
    if c.age > spec.window:
        return Verdict(INCONCLUSIVE, f"canary metrics are stale: newest sample is {c.age:.0f}s old", details)
    if c.requests < spec.min_requests:
        return Verdict(INCONCLUSIVE, f"too few canary requests: {c.requests:.0f} < {spec.min_requests}", details)
    # absolute gates on confidence bounds: Fail when even the lower bound is over the limit,
    # Inconclusive while the interval straddles it (more requests will tell)
    confidence = 1.0 - spec.significance
    low, high = stats.proportion_bounds(c.errors, c.requests, confidence)
    details.update(errorRateBounds=[round(low, 6), round(high, 6)])
    if low > spec.max_error_rate:
        return Verdict(FAIL, f"canary error rate {_rate(c):.4f} exceeds {spec.max_error_rate} "
                             f"({confidence:.0%} bounds {low:.4f}-{high:.4f})", details)
    if high > spec.max_error_rate:
        return Verdict(INCONCLUSIVE, f"canary error rate {_rate(c):.4f} may exceed {spec.max_error_rate}: "
                                     f"{confidence:.0%} bounds {low:.4f}-{high:.4f} straddle it", details)
    if spec.max_latency_p99 is not None and p99 is not None:
        p99_low, p99_high = stats.quantile_bounds(0.99, c.buckets, confidence)
        if p99_low is not None and p99_low > spec.max_latency_p99:
            return Verdict(FAIL, f"canary p99 latency {p99 * 1000:.1f}ms exceeds {spec.max_latency_p99 * 1000:.0f}ms "
                                 f"(lower bound {p99_low * 1000:.1f}ms)", details)
        if p99_high is not None and p99_high > spec.max_latency_p99:
            return Verdict(INCONCLUSIVE, f"canary p99 latency {p99 * 1000:.1f}ms may exceed "
                                         f"{spec.max_latency_p99 * 1000:.0f}ms (upper bound {p99_high * 1000:.1f}ms)", details)
    if not spec.compare_to_stable:
        return Verdict(PASS, "absolute gates passed", details)
    s = m.stable
    if s is None or s.requests < spec.min_requests:       # no comparison is no evidence: never a Pass
        have = "no series" if s is None else f"{s.requests:.0f} < {spec.min_requests} requests"
        return Verdict(INCONCLUSIVE, f"absolute gates passed; too little stable traffic to compare ({have})", details)
    if s.age > spec.window:
        return Verdict(INCONCLUSIVE, f"stable metrics are stale: newest sample is {s.age:.0f}s old", details)
    stable_p99 = stats.quantile(0.99, s.buckets)
    canary_buckets, stable_buckets = stats.common_bounds(c.buckets, s.buckets)
    if len(canary_buckets) < 2:
        return Verdict(INCONCLUSIVE, "canary and stable latency histograms share no bucket bounds", details)
    odds, p_errors = stats.error_rate_test(c.errors, c.requests, s.errors, s.requests)
    u, p_latency = stats.latency_test(canary_buckets, stable_buckets)
    details.update(stableRequests=round(s.requests), stableErrorRate=round(_rate(s), 6),
                   stableLatencyP99=None if stable_p99 is None else round(stable_p99, 6),
                   errorOddsRatio=round(odds, 4) if odds == odds and odds != float("inf") else str(odds),
                   errorPValue=round(p_errors, 6), latencyU=round(u, 1) if u == u else None,
                   latencyPValue=round(p_latency, 6), test="fisher-exact+mann-whitney-u")
    if spec.error_rate_margin > 0:                         # worse, and by more than the negligible margin
        p_excess = stats.excess_error_test(c.errors, c.requests, s.errors, s.requests, spec.error_rate_margin)
        details.update(errorRateMargin=spec.error_rate_margin, errorExcessPValue=round(p_excess, 6))
        p_errors = max(p_errors, p_excess)
    if p_errors < spec.significance and _rate(c) > _rate(s):
        return Verdict(FAIL, f"canary error rate {_rate(c):.4f} is worse than stable's {_rate(s):.4f} (p={p_errors:.2g})", details)
    if (p_latency < spec.significance and p99 is not None and stable_p99 is not None
            and p99 > stable_p99 * spec.latency_tolerance):
        return Verdict(FAIL, f"canary p99 {p99 * 1000:.1f}ms is worse than stable's {stable_p99 * 1000:.1f}ms "
                             f"beyond x{spec.latency_tolerance} (p={p_latency:.2g})", details)
    return Verdict(PASS, "absolute and relative gates passed", details)
