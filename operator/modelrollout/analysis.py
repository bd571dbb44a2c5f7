"""Measurements -> a verdict: Pass, Fail, Inconclusive, or Error.

Inconclusive (no data, too few requests, stale or malformed data, an interval that straddles a
limit) never promotes and never counts as a failure; the planner holds the step and applies the
spec's policy after a bounded time. Error (the metrics source could not be read) is counted
apart, against consecutiveErrorLimit, as Argo Rollouts does.

Each look that runs a test spends part of the rollout's false-rollback budget (`alpha`, from
stats.look_alpha): only a Fail needs it. Requests of one batch share its failure and latency,
so every count is divided by the batch design effect before it is tested; requests slower than
a bound are also divided by how much they cluster in time (a stall is one event). An error
rate is the version's, not the step's: the relative error test judges the window together with
the last window of every finished step (the evidence the planner keeps in status); the latency
and absolute gates judge the window alone. The optional drift gate compares what the versions
predicted over the window.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from . import stats
from .spec import AnalysisSpec

PASS, FAIL, INCONCLUSIVE, ERROR = "Pass", "Fail", "Inconclusive", "Error"


@dataclasses.dataclass(frozen=True)
class VersionSample:
    """One version's traffic over the analysis window."""
    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]   # latency histogram of successes (le seconds, cumulative)
    age: float = 0.0                           # seconds since the newest scrape of this series
    batched: float = 0.0                       # requests answered by forward passes (sum of pass sizes)
    peers: float = 0.0                         # sum over passes of size squared; 0: unknown, taken as 1 each
    slices: tuple[tuple[tuple[float, float], ...], ...] = ()   # the latency histogram per stretch of the window
    predictions: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)   # output -> bin -> count

    @property
    def design_effect(self) -> float:
        return stats.design_effect(self.batched, self.peers)


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
    tested: bool = False                       # a test ran: this look spent its share of alpha

    def to_status(self, at: str) -> dict[str, Any]:
        return {"verdict": self.outcome, "reason": self.reason, "time": at, **self.details}


Evidence = dict[str, list[float]]          # version -> [requests, errors], divided by design effects


def accumulate(prior: Evidence | None, c: VersionSample, s: VersionSample | None, spec: AnalysisSpec) -> Evidence:
    """The finished steps' requests and errors with this window's added (divided by design effects)."""
    out = {k: list(v) for k, v in (prior or {}).items()}
    usable = {"canary": c, "stable": s if s is not None and s.age <= spec.window else None}
    for name, sample in usable.items():
        if sample is not None:
            n, e = out.get(name, [0.0, 0.0])
            d = sample.design_effect
            out[name] = [round(n + sample.requests / d, 3), round(e + sample.errors / d, 3)]
    return out


@dataclasses.dataclass
class _Look:
    """One judgement's inputs and the details it records."""
    spec: AnalysisSpec
    c: VersionSample
    s: VersionSample | None
    alpha: float                               # this look's share of the rollout's false-rollback budget
    details: dict[str, Any]
    evidence: Evidence

    def verdict(self, outcome: str, reason: str) -> Verdict:
        return Verdict(outcome, reason, self.details, tested=True)


def _rate(sample: VersionSample) -> float:
    return sample.errors / sample.requests if sample.requests else 0.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.4g}ms"


def _fault(name: str, sample: VersionSample) -> str | None:
    numbers = (sample.requests, sample.errors, sample.age, sample.batched, sample.peers)
    if any(not math.isfinite(x) or x < 0 for x in numbers):
        return f"{name} counts are not finite, non-negative numbers"
    if sample.errors > sample.requests + 1e-9:
        return f"{name} has more errors than requests"
    if any(not math.isfinite(n) or n < 0 for bins in sample.predictions.values() for n in bins.values()):
        return f"{name} prediction counts are not finite, non-negative numbers"
    problem = stats.malformed(sample.buckets)
    return f"{name} latency histogram: {problem}" if problem else None


def _screen(spec: AnalysisSpec, m: Measurements, details: dict[str, Any]) -> Verdict | None:
    """Whatever makes this look untestable: it spends nothing."""
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
    return None


# -- gates: each returns a verdict that ends the look, or None to go on --------------------------

def absolute_error_gate(k: _Look) -> Verdict | None:
    """Fail when even the lower bound is over the limit (at this look's alpha); Inconclusive
    while the interval at the spec's significance straddles it (more requests will tell)."""
    d, limit = k.c.design_effect, k.spec.max_error_rate
    low, _ = stats.proportion_bounds(k.c.errors / d, k.c.requests / d, 1.0 - 2 * k.alpha)
    _, high = stats.proportion_bounds(k.c.errors / d, k.c.requests / d, 1.0 - 2 * k.spec.significance)
    k.details.update(errorRateBounds=[round(low, 6), round(high, 6)])
    if low > limit:
        return k.verdict(FAIL, f"canary error rate {_rate(k.c):.4f} exceeds {limit} (lower bound {low:.4f})")
    if high > limit:
        return k.verdict(INCONCLUSIVE, f"canary error rate {_rate(k.c):.4f} may exceed {limit}: "
                                       f"bounds {low:.4f}-{high:.4f} straddle it")
    return None


def absolute_latency_gate(k: _Look) -> Verdict | None:
    limit, p99 = k.spec.max_latency_p99, k.details["latencyP99"]
    if limit is None or p99 is None:
        return None
    buckets = stats.deflated(k.c.buckets, k.c.design_effect)
    low, _ = stats.quantile_bounds(0.99, buckets, 1.0 - 2 * k.alpha)
    _, high = stats.quantile_bounds(0.99, buckets, 1.0 - 2 * k.spec.significance)
    if low is not None and low > limit:
        return k.verdict(FAIL, f"canary p99 latency {_ms(p99)} exceeds {_ms(limit)} (lower bound {_ms(low)})")
    if high is not None and high > limit:
        return k.verdict(INCONCLUSIVE, f"canary p99 latency {_ms(p99)} may exceed {_ms(limit)} (upper bound {_ms(high)})")
    return None


def stable_comparable(k: _Look) -> Verdict | None:
    s, spec = k.s, k.spec
    if not spec.compare_to_stable:
        return k.verdict(PASS, "absolute gates passed")
    if s is None or s.requests < spec.min_requests:       # no comparison is no evidence: never a Pass
        have = "no series" if s is None else f"{s.requests:.0f} < {spec.min_requests} requests"
        return k.verdict(INCONCLUSIVE, f"absolute gates passed; too little stable traffic to compare ({have})")
    if s.age > spec.window:
        return k.verdict(INCONCLUSIVE, f"stable metrics are stale: newest sample is {s.age:.0f}s old")
    k.details.update(stableRequests=round(s.requests), stableErrorRate=round(_rate(s), 6),
                     designEffects=[round(k.c.design_effect, 3), round(s.design_effect, 3)])
    return None


def relative_error_gate(k: _Look) -> Verdict | None:
    """Fisher's exact test on the window and the finished steps' windows, divided by design effects;
    with a margin, the canary must also be worse by more than the margin (Wald, non-inferiority)."""
    (cn, ce), (sn, se) = k.evidence["canary"], k.evidence["stable"]
    odds, p = stats.proportion_test(ce, cn, se, sn)
    k.details.update(errorOddsRatio=round(odds, 4) if math.isfinite(odds) else str(odds), errorPValue=round(p, 6))
    if k.spec.error_rate_margin > 0:
        p_excess = stats.excess_error_test(ce, cn, se, sn, k.spec.error_rate_margin)
        k.details.update(errorRateMargin=k.spec.error_rate_margin, errorExcessPValue=round(p_excess, 6))
        p = max(p, p_excess)
    if p < k.alpha and ce / cn > se / sn:
        return k.verdict(FAIL, f"canary error rate {ce / cn:.4f} is worse than stable's {se / sn:.4f} over "
                               f"the rollout so far (p={p:.2g} < {k.alpha:.2g})")
    return None


def _tail_design_effect(sample: VersionSample, bound: float) -> float:
    """The larger of the batch design effect and the time-clustering one of requests slower than
    `bound` (a stall slows a run of requests at once: one event, not many). A slice that cannot be
    read at the bound (a counter reset mid-scrape) is left out."""
    usable = [b for b in sample.slices if not stats.malformed(b) and any(le == bound for le, _ in b)]
    per_slice = [(stats.count_above(b, bound), b[-1][1]) for b in usable]
    return max(sample.design_effect, stats.cluster_design_effect(per_slice))


def relative_latency_gate(k: _Look) -> Verdict | None:
    """The tail test: the share of canary successes slower than stable's p99 (the first shared
    bucket bound at or above it) against stable's own share, from bucket counts (exact at a
    shared bound) divided by design effects that include clustering in time; Fail when it is
    significantly larger and the canary's p99 is beyond the tolerance."""
    canary, stable = stats.common_bounds(k.c.buckets, k.s.buckets)
    stable_p99, p99 = stats.quantile(0.99, k.s.buckets), k.details["latencyP99"]
    k.details.update(stableLatencyP99=None if stable_p99 is None else round(stable_p99, 6))
    if len(canary) < 2:
        return k.verdict(INCONCLUSIVE, "canary and stable latency histograms share no bucket bounds")
    if stable_p99 is None or p99 is None:
        return k.verdict(INCONCLUSIVE, "no successful requests to compare latencies with")
    bound = next((le for le, _ in stable if le >= stable_p99 and math.isfinite(le)), None)
    if bound is None:
        return k.verdict(INCONCLUSIVE, f"stable's p99 {_ms(stable_p99)} is past the histograms' last shared bound")
    dc, ds = _tail_design_effect(k.c, bound), _tail_design_effect(k.s, bound)
    k.details.update(tailDesignEffects=[round(dc, 3), round(ds, 3)])
    c_total, s_total = canary[-1][1], stable[-1][1]
    c_above, s_above = stats.count_above(canary, bound), stats.count_above(stable, bound)
    _, p = stats.proportion_test(c_above / dc, c_total / dc, s_above / ds, s_total / ds)
    c_share, s_share = c_above / max(c_total, 1), s_above / max(s_total, 1)
    k.details.update(tailBound=bound, tailShares=[round(c_share, 6), round(s_share, 6)], latencyPValue=round(p, 6))
    if p < k.alpha and p99 > stable_p99 * k.spec.latency_tolerance:
        return k.verdict(FAIL, f"canary p99 {_ms(p99)} is worse than stable's {_ms(stable_p99)} beyond "
                               f"x{k.spec.latency_tolerance}: {c_share:.2%} of canary requests "
                               f"are slower than {_ms(bound)}, against {s_share:.2%} (p={p:.2g})")
    return None


def prediction_drift_gate(k: _Look) -> Verdict | None:
    """spec.analysis.predictionDrift: per output, the canary's predictions against stable's over
    the same window, as the Jensen-Shannon distance between their shares. Fail when even its lower
    confidence bound (at this look's alpha, shared by the outputs) is past maxDistance;
    Inconclusive while the estimate is past it but the bound is not (more predictions will tell),
    or while either version has too few. Counts are not divided by design effects: a batch shares
    its forward pass, not its inputs."""
    drift = k.spec.prediction_drift
    if drift is None:
        return None
    outputs = [drift.output] if drift.output else sorted(set(k.c.predictions) | set(k.s.predictions))
    if not outputs:
        return k.verdict(INCONCLUSIVE, "no prediction counts to compare: the model's config declares no "
                                       "`predictions` on its outputs")
    judged: dict[str, dict] = {}
    k.details["predictionDrift"] = judged
    for output in outputs:
        c, s = k.c.predictions.get(output, {}), k.s.predictions.get(output, {})
        nc, ns = sum(c.values()), sum(s.values())
        if min(nc, ns) < drift.min_predictions:
            return k.verdict(INCONCLUSIVE, f"too few predictions of {output!r} to compare: {nc:.0f} canary, "
                                           f"{ns:.0f} stable (< {drift.min_predictions})")
        distance, low = stats.distribution_shift(c, s, 1.0 - k.alpha / len(outputs))
        judged[output] = {"distance": round(distance, 4), "lowerBound": round(low, 4),
                          "canary": {b: round(n / nc, 4) for b, n in sorted(c.items())},
                          "stable": {b: round(n / ns, 4) for b, n in sorted(s.items())}}
    for output, r in judged.items():
        if r["lowerBound"] > drift.max_distance:
            return k.verdict(FAIL, f"canary's {output!r} predictions differ from stable's: Jensen-Shannon distance "
                                   f"{r['distance']:.3f}, at least {r['lowerBound']:.3f} > {drift.max_distance}")
    for output, r in judged.items():
        if r["distance"] > drift.max_distance:
            return k.verdict(INCONCLUSIVE, f"canary's {output!r} predictions may differ from stable's: Jensen-Shannon "
                                           f"distance {r['distance']:.3f} > {drift.max_distance}, lower bound {r['lowerBound']:.3f}")
    return None


GATES: tuple[Callable[[_Look], Verdict | None], ...] = (
    absolute_error_gate, absolute_latency_gate, stable_comparable, relative_error_gate, relative_latency_gate,
    prediction_drift_gate)


def judge(spec: AnalysisSpec, m: Measurements, alpha: float | None = None, evidence: Evidence | None = None) -> Verdict:
    """alpha: what this look may spend of the rollout's false-rollback budget (schedule.look_alpha),
    the spec's significance when judged alone; evidence: the finished steps' (status.errorEvidence)."""
    details: dict[str, Any] = {"queries": dict(m.queries)}
    if m.warnings:
        details["warnings"] = list(m.warnings)       # Prometheus's own, e.g. a series that is not a counter
    untestable = _screen(spec, m, details)
    if untestable:
        return untestable
    alpha = spec.significance if alpha is None else alpha
    details.update(alpha=round(alpha, 6), errorEvidence=accumulate(evidence, m.canary, m.stable, spec))
    look = _Look(spec, m.canary, m.stable, alpha, details, details["errorEvidence"])
    for gate in GATES:
        verdict = gate(look)
        if verdict:
            return verdict
    return look.verdict(PASS, "absolute and relative gates passed")
