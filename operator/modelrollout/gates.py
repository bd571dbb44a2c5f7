"""The analysis's gates: each judges one thing and says Fail, Inconclusive or nothing (it passed).

All applicable gates run at every look, each at its share of the look's alpha (WEIGHTS; Bonferroni
over gates, as over looks), so the look's false-rollback rate is at most its alpha. The error gates
judge the rollout's evidence so far (every window, failing ones included); the latency and drift
gates judge the window. Counts are divided by each version's dispersion (analysis.dispersion).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from . import stats
from .analysis import FAIL, INCONCLUSIVE, PASS, VersionSample, Verdict, dispersion, tail_bound
from .spec import AnalysisSpec


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:.4g}ms"


@dataclasses.dataclass
class Look:
    """One judgement's inputs and the details it records."""

    spec: AnalysisSpec
    c: VersionSample
    s: VersionSample | None  # None unless stable is there to compare with
    alpha: float  # each gate's share of the look's alpha
    details: dict[str, Any]

    @property
    def evidence(self) -> dict[str, dict]:
        return self.details["evidence"]

    def effect(self, version: str, kind: str) -> float:
        return dispersion(self.evidence.get(version) or {}, kind)


Outcome = tuple[str, str] | None  # (Fail | Inconclusive, reason); None: passed


def absolute_error_gate(k: Look) -> Outcome:
    """Fail when even the lower bound of the canary's error rate over the rollout so far (Wilson, at
    the gate's alpha) is over the limit; Inconclusive while the interval at the spec's significance
    straddles it (more requests will tell)."""
    ev, d, limit = k.evidence["canary"], k.effect("canary", "error"), k.spec.max_error_rate
    n, e = ev["requests"] / d, ev["errors"] / d
    low, _ = stats.proportion_bounds(e, n, 1.0 - 2 * k.alpha)
    _, high = stats.proportion_bounds(e, n, 1.0 - 2 * k.spec.significance)
    rate = ev["errors"] / max(ev["requests"], 1.0)
    k.details.update(rolloutErrorRate=round(rate, 6), errorRateBounds=[round(low, 6), round(high, 6)])
    if low > limit:
        return FAIL, f"canary error rate {rate:.4f} exceeds {limit} (lower bound {low:.4f})"
    if high > limit:
        return INCONCLUSIVE, f"canary error rate {rate:.4f} may exceed {limit}: bounds {low:.4f}-{high:.4f} straddle it"
    return None


def absolute_latency_gate(k: Look) -> Outcome:
    """The canary's p99 against maxLatencyP99, by bounds on bucket edges (stats.quantile_bounds).
    When both bounds are the edges of the one bucket that holds the limit, no number of requests
    can tell the p99 from the limit: that passes, and the details say so."""
    limit, p99 = k.spec.max_latency_p99, k.details["latencyP99"]
    if limit is None or p99 is None:
        return None
    buckets = stats.deflated(k.c.buckets, k.effect("canary", "tail"))
    low, _ = stats.quantile_bounds(0.99, buckets, 1.0 - 2 * k.alpha)
    low_s, high = stats.quantile_bounds(0.99, buckets, 1.0 - 2 * k.spec.significance)
    k.details.update(latencyP99Bounds=[low_s, high if high is None or math.isfinite(high) else str(high)])
    if low is not None and low >= limit:
        return FAIL, f"canary p99 latency {_ms(p99)} exceeds {_ms(limit)} (above {_ms(low)})"
    if high is not None and high > limit:
        if (low_s, high) == stats.bucket_holding(buckets, limit):
            k.details["latencyP99Resolution"] = f"the p99 and the limit share the bucket {_ms(low_s)}-{_ms(high)}"
            return None
        return INCONCLUSIVE, f"canary p99 latency {_ms(p99)} may exceed {_ms(limit)} (up to {_ms(high)})"
    return None


def relative_error_gate(k: Look) -> Outcome:
    """Fisher's exact test on the rollout's evidence, each version's counts divided by its
    dispersion; with a margin, the canary must also be worse by more than the margin (Wald,
    non-inferiority)."""
    c, s = k.evidence["canary"], k.evidence.get("stable")
    if not s or not s.get("requests"):
        return INCONCLUSIVE, "no stable evidence to compare errors with"
    dc, ds = k.effect("canary", "error"), k.effect("stable", "error")
    cn, ce, sn, se = c["requests"] / dc, c["errors"] / dc, s["requests"] / ds, s["errors"] / ds
    odds, p = stats.proportion_test(ce, cn, se, sn)
    k.details.update(errorOddsRatio=round(odds, 4) if math.isfinite(odds) else str(odds), errorPValue=round(p, 6))
    if k.spec.error_rate_margin > 0:
        p_excess = stats.excess_error_test(ce, cn, se, sn, k.spec.error_rate_margin)
        k.details.update(errorRateMargin=k.spec.error_rate_margin, errorExcessPValue=round(p_excess, 6))
        p = max(p, p_excess)
    if p < k.alpha and ce / cn > se / sn:
        return FAIL, (f"canary error rate {ce / cn:.4f} is worse than stable's {se / sn:.4f} over the rollout so far (p={p:.2g} < {k.alpha:.2g})")
    return None


def relative_latency_gate(k: Look) -> Outcome:
    """The tail test: the share of canary successes slower than stable's p99 (the first shared
    bucket bound at or above it) against stable's own share, from bucket counts (exact at a shared
    bound) divided by each version's dispersion of slow requests; Fail when it is significantly
    larger and the canary's p99 is beyond the tolerance."""
    assert k.s is not None
    canary, stable = stats.common_bounds(k.c.buckets, k.s.buckets)
    stable_p99, p99 = stats.quantile(0.99, k.s.buckets), k.details["latencyP99"]
    k.details.update(stableLatencyP99=None if stable_p99 is None else round(stable_p99, 6))
    if len(canary) < 2:
        return INCONCLUSIVE, "canary and stable latency histograms share no bucket bounds"
    if stable_p99 is None or p99 is None:
        return INCONCLUSIVE, "no successful requests to compare latencies with"
    bound = tail_bound(tuple(stable))
    if bound is None:
        return INCONCLUSIVE, f"stable's p99 {_ms(stable_p99)} is past the histograms' last shared bound"
    dc, ds = k.effect("canary", "tail"), k.effect("stable", "tail")
    c_total, s_total = canary[-1][1], stable[-1][1]
    c_above, s_above = stats.count_above(canary, bound), stats.count_above(stable, bound)
    _, p = stats.proportion_test(c_above / dc, c_total / dc, s_above / ds, s_total / ds)
    c_share, s_share = c_above / max(c_total, 1), s_above / max(s_total, 1)
    k.details.update(tailBound=bound, tailShares=[round(c_share, 6), round(s_share, 6)], latencyPValue=round(p, 6))
    if p < k.alpha and p99 > stable_p99 * k.spec.latency_tolerance:
        return FAIL, (
            f"canary p99 {_ms(p99)} is worse than stable's {_ms(stable_p99)} beyond x{k.spec.latency_tolerance}: "
            f"{c_share:.2%} of canary requests are slower than {_ms(bound)}, against {s_share:.2%} (p={p:.2g})"
        )
    return None


def prediction_drift_gate(k: Look) -> Outcome:
    """spec.analysis.predictionDrift: per output, the canary's predictions against stable's over
    the same window, as the Jensen-Shannon distance between their shares. Fail when even its lower
    confidence bound (at the gate's alpha, shared by the outputs) is past maxDistance;
    Inconclusive while the estimate is past it but the bound is not, or while either version has
    too few. Counts are not divided by dispersions: a batch shares its forward pass, not its inputs."""
    drift = k.spec.prediction_drift
    assert drift is not None and k.s is not None
    outputs = [drift.output] if drift.output else sorted(set(k.c.predictions) | set(k.s.predictions))
    if not outputs:
        return INCONCLUSIVE, "no prediction counts to compare: the model's config declares no `predictions` on its outputs"
    judged: dict[str, dict] = {}
    k.details["predictionDrift"] = judged
    for output in outputs:
        c, s = k.c.predictions.get(output, {}), k.s.predictions.get(output, {})
        nc, ns = sum(c.values()), sum(s.values())
        if min(nc, ns) < drift.min_predictions:
            return INCONCLUSIVE, (f"too few predictions of {output!r} to compare: {nc:.0f} canary, {ns:.0f} stable (< {drift.min_predictions})")
        distance, low = stats.distribution_shift(c, s, 1.0 - k.alpha / len(outputs))
        judged[output] = {
            "distance": round(distance, 4),
            "lowerBound": round(low, 4),
            "canary": {b: round(n / nc, 4) for b, n in sorted(c.items())},
            "stable": {b: round(n / ns, 4) for b, n in sorted(s.items())},
        }
    for output, r in judged.items():
        if r["lowerBound"] > drift.max_distance:
            return FAIL, (
                f"canary's {output!r} predictions differ from stable's: Jensen-Shannon distance "
                f"{r['distance']:.3f}, at least {r['lowerBound']:.3f} > {drift.max_distance}"
            )
    for output, r in judged.items():
        if r["distance"] > drift.max_distance:
            return INCONCLUSIVE, (
                f"canary's {output!r} predictions may differ from stable's: Jensen-Shannon distance "
                f"{r['distance']:.3f} > {drift.max_distance}, lower bound {r['lowerBound']:.3f}"
            )
    return None


Gate = Callable[[Look], Outcome]


def _stable_missing(spec: AnalysisSpec, s: VersionSample | None, window: VersionSample | None) -> str | None:
    """Why stable cannot be compared with at this step (s: its step so far, window: this window's):
    no comparison is no evidence, never a Pass."""
    if window is not None and window.age > spec.window:
        return f"stable metrics are stale: newest sample is {window.age:.0f}s old"
    if s is None or s.requests < spec.min_requests:
        have = "no series" if s is None else f"{s.requests:.0f} < {spec.min_requests} requests"
        return f"too little stable traffic to compare ({have})"
    return None


# Each gate's weight in the look's alpha: the relative gates judge what a canary most often gets
# wrong against its own stable; an absolute limit is far from a healthy version's rate.
WEIGHTS = {"absoluteError": 1.0, "absoluteLatency": 1.0, "relativeError": 2.0, "relativeLatency": 2.0, "predictionDrift": 1.0}


def applicable(spec: AnalysisSpec, comparable: bool) -> list[tuple[str, Gate]]:
    gates: list[tuple[str, Gate]] = [("absoluteError", absolute_error_gate)]
    if spec.max_latency_p99 is not None:
        gates.append(("absoluteLatency", absolute_latency_gate))
    if spec.compare_to_stable and comparable:
        gates.append(("relativeError", relative_error_gate))
        if spec.metrics.has_latency:
            gates.append(("relativeLatency", relative_latency_gate))
        if spec.prediction_drift is not None:
            gates.append(("predictionDrift", prediction_drift_gate))
    return gates


def run_gates(
    spec: AnalysisSpec, c: VersionSample, s: VersionSample | None, alpha: float, details: dict[str, Any], stable_window: VersionSample | None = None
) -> Verdict:
    """Every applicable gate on the step's samples; the first Fail fails the look, else any
    Inconclusive holds it."""
    missing = _stable_missing(spec, s, stable_window) if spec.compare_to_stable else None
    gates = applicable(spec, missing is None)
    total = sum(WEIGHTS[name] for name, _ in gates)
    look = Look(spec, c, s if missing is None else None, alpha, details)
    details.update(
        alpha=round(alpha, 6),
        dispersion={
            v: {"errors": round(look.effect(v, "error"), 3), "tail": round(look.effect(v, "tail"), 3)}
            for v in ("canary", "stable")
            if v in look.evidence
        },
    )
    if missing is None and s is not None:
        details.update(stableRequests=round(s.requests), stableErrorRate=round(s.errors / s.requests if s.requests else 0, 6))
    said = {name: gate(dataclasses.replace(look, alpha=alpha * WEIGHTS[name] / total)) for name, gate in gates}
    details["gates"] = {name: (r[0] if r else PASS) for name, r in said.items()}
    failed = [r[1] for r in said.values() if r and r[0] == FAIL]
    if failed:
        return Verdict(FAIL, "; ".join(failed), details, tested=True)
    held = [r[1] for r in said.values() if r] + ([missing] if missing else [])
    if held:
        return Verdict(INCONCLUSIVE, "; ".join(held), details, tested=True)
    return Verdict(PASS, "absolute and relative gates passed" if spec.compare_to_stable else "absolute gates passed", details, tested=True)
