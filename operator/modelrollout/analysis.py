"""Measurements -> a verdict: Pass, Fail, Inconclusive, or Error.

Inconclusive (no data, too few requests, stale or malformed data, an interval that straddles a
limit) never promotes and never counts as a failure; the planner holds the step and applies the
spec's policy after a bounded time. Error (the metrics source could not be read, or holds fewer
than two scrapes of the canary in the window) is counted apart, against consecutiveErrorLimit, as
Argo Rollouts does.

A look's window never overlaps an earlier one (schedule.analysis_window), and every window that
was read joins the rollout's evidence (status.evidence), whatever its verdict: an error rate is
the version's, not the step's, so the error gates judge all the rollout's requests so far; the
latency gates and the drift gate judge the step so far. Every gate runs at every look, each at its
share of the look's alpha (its part of the rollout's false-rollback budget, stats.look_alpha);
any Fail fails the look, else any Inconclusive holds it (gates.py).

Requests are not independent: a forward pass's requests share its failure and latency, and
errors and stalls come in bursts. Each version's counts are divided by its dispersion: the batch
design effect (predictor_batch_peers / predictor_batch_requests), raised when Pearson's X² of its
per-scrape counts shows more spread than batching explains (dispersion()).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from . import stats
from .spec import AnalysisSpec

PASS, FAIL, INCONCLUSIVE, ERROR = "Pass", "Fail", "Inconclusive", "Error"
Buckets = tuple[tuple[float, float], ...]  # (le seconds, cumulative count), ending with +Inf


@dataclasses.dataclass(frozen=True)
class Scrape:
    """One pod's counters over one scrape interval: the increments between two of its samples."""

    requests: float
    errors: float
    buckets: Buckets = ()  # the successes' latency histogram


@dataclasses.dataclass(frozen=True)
class VersionSample:
    """One version's traffic over the analysis window."""

    requests: float
    errors: float
    buckets: Buckets  # latency histogram of successes
    age: float = 0.0  # seconds since the newest scrape of this series
    batched: float = 0.0  # requests answered by forward passes (sum of pass sizes)
    peers: float = 0.0  # sum over passes of size squared; 0: unknown, taken as 1 each
    scrapes: tuple[Scrape, ...] = ()  # the window per scrape of each pod
    predictions: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)  # output -> bin -> count

    @property
    def design_effect(self) -> float:
        return stats.design_effect(self.batched, self.peers)


@dataclasses.dataclass(frozen=True)
class Window:
    """What a look counts, in epoch seconds: every scrape in (start, end], but no increment that
    began before `since` (the step was served from then: earlier requests had another split)."""

    start: float
    end: float
    since: float


@dataclasses.dataclass(frozen=True)
class Measurements:
    canary: VersionSample | None  # None: no series found
    stable: VersionSample | None
    queries: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None  # the metrics source could not be read
    warnings: tuple[str, ...] = ()  # what Prometheus warned about while answering
    window: tuple[str, str, str] | None = None  # (start, end, since) of the counts, as timestamps
    lacks: tuple[str, ...] = ()  # what the provider's series cannot tell (status: notMeasured)


@dataclasses.dataclass(frozen=True)
class Verdict:
    outcome: str
    reason: str
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    tested: bool = False  # a test ran: this look spent its share of alpha

    def to_status(self, at: str) -> dict[str, Any]:
        return {"verdict": self.outcome, "reason": self.reason, "time": at, **{k: v for k, v in self.details.items() if k != "evidence"}}


# -- evidence: what the rollout's windows add up to -------------------------------------------

# version -> requests, errors, batched, peers, errorClusters, tailDispersion (the whole rollout);
# "step" -> since (the step's start), and per version requests, errors, buckets, predictions
Evidence = dict[str, dict[str, Any]]


def tail_bound(buckets: Buckets) -> float | None:
    """The first finite bucket bound at or above the p99: where 'slow' starts, for the dispersion."""
    p99 = stats.quantile(0.99, buckets)
    return None if p99 is None else next((le for le, _ in buckets if le >= p99 and math.isfinite(le)), None)


def _rollout_part(sample: VersionSample, bound: float | None) -> dict[str, Any]:
    """bound: where slow starts for both versions in this window (stable's p99 bound, as the tail test's)."""
    used = [(s.errors, s.requests) for s in sample.scrapes if s.requests > 0]
    usable = (
        [b for b in (s.buckets for s in sample.scrapes) if b and not stats.malformed(b) and any(le == bound for le, _ in b)]
        if bound is not None
        else []
    )
    tail = stats.pearson_dispersion([(stats.count_above(b, bound), b[-1][1]) for b in usable] if bound is not None else [])
    return {
        "requests": sample.requests,
        "errors": sample.errors,
        "batched": sample.batched,
        "peers": sample.peers,
        "errorClusters": [sum(a * a / n for a, n in used), len(used)] if used else [0.0, 0],
        "tailDispersion": list(tail),
    }


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (status is JSON, which has no infinity)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _step_part(sample: VersionSample) -> dict[str, Any]:
    return {
        "requests": sample.requests,
        "errors": sample.errors,
        "buckets": [[_le(le), n] for le, n in sample.buckets],
        "predictions": sample.predictions,
    }


def _added(prior: Any, window: Any) -> Any:
    """Counts added key by key: numbers, [x2, df] pairs, histograms as [[le, count]], prediction bins."""
    if isinstance(window, dict):
        prior = prior if isinstance(prior, dict) else {}
        return {**prior, **{k: _added(prior.get(k), v) for k, v in window.items()}}
    if isinstance(window, list) and (not window or isinstance(window[0], list)):  # a histogram by le
        counts: dict[float, float] = {}
        for le, n in [*(prior or []), *window]:
            counts[float(le)] = counts.get(float(le), 0.0) + n
        return [[_le(le), round(n, 6)] for le, n in sorted(counts.items())]
    if isinstance(window, list):
        return [round(a + b, 6) for a, b in zip(window, prior or [0] * len(window))]
    return round(float(window or 0) + float(prior or 0), 6)


def accumulate(prior: Evidence | None, c: VersionSample, s: VersionSample | None, spec: AnalysisSpec, since: str = "") -> Evidence:
    """The rollout's evidence with this window's added (stable's only while fresh); the step's part
    starts again when the step does (since: when it was served)."""
    out = {k: v for k, v in (prior or {}).items() if isinstance(v, dict)}  # an older operator's lists: dropped
    step = out.get("step") if (out.get("step") or {}).get("since") == since else None
    step = {"since": since, **{k: v for k, v in (step or {}).items() if k != "since"}}
    fresh = s if s is not None and s.age <= spec.window else None
    bound = tail_bound((fresh or c).buckets)
    for name, sample in (("canary", c), ("stable", fresh)):
        if sample is not None:
            out[name] = _added(out.get(name), _rollout_part(sample, bound))
            step[name] = _added(step.get(name), _step_part(sample))
    out["step"] = step
    return out


def step_sample(evidence: Evidence, version: str) -> VersionSample | None:
    """A version's traffic over the step so far (every window read since it was served)."""
    part = (evidence.get("step") or {}).get(version)
    if not part:
        return None
    return VersionSample(
        part["requests"], part["errors"], tuple((float(le), n) for le, n in part["buckets"]), predictions=part.get("predictions") or {}
    )


def dispersion(evidence: Mapping[str, Any], kind: str) -> float:
    """How many requests' worth of information one request carries at most, for errors or for slow
    requests: the batch design effect, raised when the per-scrape counts are significantly more
    spread than batching explains (stats.dispersion_bound). Errors: Pearson's X² of every scrape of
    the rollout against its one error rate (an error burst in one window is spread against the
    calm ones); slow requests: the windows' own X² summed (each window has its own bound)."""
    if kind == "error":
        squares, clusters = (evidence.get("errorClusters") or [0.0, 0])[:2]
        x2, df = stats.pearson_from_sums(squares, float(evidence.get("errors") or 0), float(evidence.get("requests") or 0), int(clusters))
    else:
        x2, df = (evidence.get("tailDispersion") or [0.0, 0])[:2]
    batch = stats.design_effect(float(evidence.get("batched") or 0), float(evidence.get("peers") or 0))
    return stats.dispersion_bound(x2, df, batch)


# -- screening: what makes a look untestable (it spends nothing) -------------------------------


def _rate(sample: VersionSample) -> float:
    return sample.errors / sample.requests if sample.requests else 0.0


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


def _one_scrape(sample: VersionSample, spec: AnalysisSpec) -> str | None:
    """A window must hold two scrape increments: one tells nothing of how counts spread."""
    if sample.scrapes and len(sample.scrapes) < 2:
        return (
            f"the window holds one scrape of the canary: Prometheus scrapes it less often than "
            f"spec.analysis.scrapeInterval ({spec.scrape_interval:.0f}s) says; set it to the real interval"
        )
    return None


def _describe(c: VersionSample, details: dict[str, Any]) -> None:
    p99 = stats.quantile(0.99, c.buckets)
    details.update(requests=round(c.requests), errorRate=round(_rate(c), 6), latencyP99=None if p99 is None else round(p99, 6))


def screen(spec: AnalysisSpec, m: Measurements, details: dict[str, Any]) -> Verdict | None:
    if m.error:
        return Verdict(ERROR, f"metrics unavailable: {m.error}", details)
    c = m.canary
    if c is None:
        return Verdict(INCONCLUSIVE, "no series found for the canary", details)
    fault = _fault("canary", c) or (m.stable and _fault("stable", m.stable))
    if fault:
        return Verdict(INCONCLUSIVE, f"malformed measurement: {fault}", details)
    _describe(c, details)  # the window's, until judge() has the step's
    if c.age > spec.window:
        return Verdict(INCONCLUSIVE, f"canary metrics are stale: newest sample is {c.age:.0f}s old", details)
    few = _one_scrape(c, spec)
    if few:
        return Verdict(ERROR, few, details)
    return None


def judge(spec: AnalysisSpec, m: Measurements, alpha: float | None = None, evidence: Evidence | None = None) -> Verdict:
    """alpha: what this look may spend of the rollout's false-rollback budget (schedule.look_alpha),
    the spec's significance when judged alone; evidence: the earlier windows' (status.evidence)."""
    from .gates import run_gates  # gates.py builds on the types above

    details: dict[str, Any] = {"queries": dict(m.queries)}
    if m.window:
        details["window"] = list(m.window[:2])
    if m.warnings:
        details["warnings"] = list(m.warnings)  # Prometheus's own, e.g. a series that is not a counter
    if m.lacks:
        details["notMeasured"] = list(m.lacks)  # said, never passed silently
    untestable = screen(spec, m, details)
    if untestable:
        return untestable
    assert m.canary is not None
    details["evidence"] = accumulate(evidence, m.canary, m.stable, spec, m.window[2] if m.window else "")
    c, s = step_sample(details["evidence"], "canary"), step_sample(details["evidence"], "stable")
    assert c is not None
    _describe(c, details)
    if c.requests < spec.min_requests:  # the window still joins the evidence: the next look sees more
        return Verdict(INCONCLUSIVE, f"too few canary requests at this step: {c.requests:.0f} < {spec.min_requests}", details)
    return run_gates(spec, c, s, spec.significance if alpha is None else alpha, details, m.stable)
