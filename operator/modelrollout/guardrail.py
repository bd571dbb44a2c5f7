"""Guardrails: a cheap look at every resync during a step's hold, which rolls back at once on a
gross failure instead of letting a broken canary keep its share until the hold ends (Argo
Rollouts' background analysis). The full analysis still runs after the hold.

One gate, on the canary alone (stable is not read): its error rate since the step was served,
against spec.analysis.guardrail.maxErrorRate, a bound far above a healthy version's. It fails
only when even the lower confidence bound of that rate (Wilson, on counts deflated by the
window's own dispersion, as the absolute gate) is above the bound. Its looks spend a budget of
their own, `share` of the rollout's significance: the k-th guard look of a rollout share/(k(k+1)),
which sums to the share however many looks the holds take; the analysis's looks spend the rest.
Pure: (spec, status, measurements, now).
"""

from __future__ import annotations

import datetime as dt

from . import stats
from .analysis import FAIL, Measurements, Verdict, _fault, accumulate, dispersion
from .phases import STEPPING
from .schedule import left_to_judge, parse_time
from .spec import RolloutSpec
from .status import Status, count


def guard_due(spec: RolloutSpec, status: Status, now: dt.datetime) -> bool:
    """A guard look is due during a served step's hold, once a scrape increment can hold the
    step's traffic, at most once per scrape interval."""
    g, a = spec.analysis.guardrail, spec.analysis
    started = parse_time(status.get("stepStartedAt"))
    if g is None or started is None or status.get("phase") not in STEPPING:
        return False
    if not left_to_judge(spec, status):
        return False
    last = parse_time(status.get("guardedAt"))
    return (now - started).total_seconds() >= 2 * a.scrape_interval and (last is None or (now - last).total_seconds() >= a.scrape_interval)


def guard_alpha(spec: RolloutSpec, status: Status) -> float:
    k, g = count(status, "guardLooks") + 1, spec.analysis.guardrail
    assert g is not None, "guard_due() first"
    return spec.analysis.significance * g.share / (k * (k + 1))


def guard(spec: RolloutSpec, m: Measurements, alpha: float) -> Verdict | None:
    """Fail on a gross failure; None otherwise (nothing to say: the hold goes on, and missing or
    malformed data are the full analysis's to judge)."""
    assert spec.analysis.guardrail is not None, "guard_due() first"
    c, bound = m.canary, spec.analysis.guardrail.max_error_rate
    if m.error or c is None or c.requests <= 0 or _fault("canary", c):
        return None
    evidence = accumulate(None, c, None, spec.analysis)["canary"]
    effect = dispersion(evidence, "error")
    low, _ = stats.proportion_bounds(c.errors / effect, c.requests / effect, 1.0 - 2 * alpha)
    if low <= bound:
        return None
    rate = c.errors / c.requests
    return Verdict(
        FAIL,
        f"guardrail: canary error rate {rate:.4f} since the step started is above {bound} (lower bound {low:.4f}, dispersion {effect:.2f})",
        {"guardrail": True, "queries": dict(m.queries), "requests": round(c.requests), "errorRate": round(rate, 6), "alpha": round(alpha, 8)},
        tested=True,
    )
