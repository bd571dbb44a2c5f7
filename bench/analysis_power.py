"""How often the analysis rolls back a canary that is no worse (false rollbacks) and how often it
catches one that is (power), per whole rollout: `python bench/analysis_power.py [--rollouts 1000]`.

Each simulated rollout runs the operator's own planner and judge (no I/O) through a 9-step
rollout (10% ... 90%, then 100%) with the default analysis spec. Every analysis window carries
5,000 canary requests; stable carries the rest of the traffic at that weight. Requests are
batched as the predictor batches them (a pass takes those that arrived while the previous one
ran), a failure fails a whole batch, and a batch's requests share its lognormal latency, so
errors and latencies come in clusters. Latencies are binned in the predictor's real buckets.

It prints, for identical versions and for canaries with twice the error rate or a 30% slower
p99, the share of rollouts rolled back, promoted, and left holding or paused: for the judge as
shipped; for a naive one (each look at the full significance, requests taken as independent:
the judge before this change); and for a Kayenta-style one (Mann-Whitney U on six per-interval
values of each metric, error rate and p99, canary against stable, 95% two-sided, at every step).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "operator")]
from modelrollout import stats as rollout_stats  # noqa: E402
from modelrollout.analysis import Measurements, VersionSample, judge  # noqa: E402
from modelrollout.planner import plan  # noqa: E402
from modelrollout.schedule import analysis_due, analysis_window, look_alpha  # noqa: E402
from modelrollout.spec import parse_spec  # noqa: E402
from predictor.metrics import LATENCY_BUCKETS  # noqa: E402

CANARY_PER_WINDOW = 5_000
SERVICE_SECONDS = 0.008          # a forward pass: requests arriving meanwhile form the next batch
MAX_BATCH = 32
BOUNDS = np.array(LATENCY_BUCKETS + (np.inf,))


@dataclasses.dataclass(frozen=True)
class Version:
    batch_failure: float = 0.002     # a batch fails whole: the per-request error rate
    latency_scale: float = 1.0       # multiplies every latency


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    canary: Version
    stable: Version = Version()


SCENARIOS = (
    Scenario("identical versions", Version()),
    Scenario("canary: 2x error rate", Version(batch_failure=0.004)),
    Scenario("canary: p99 +30%", Version(latency_scale=1.3)),
)


def simulate(version: Version, requests: int, seconds: float, rng: np.random.Generator) -> VersionSample:
    """One version's traffic over a window, as the predictor's series would report it."""
    rate = requests / max(seconds, 1e-9)
    mean_batch = 1 + rate * SERVICE_SECONDS
    sizes = np.minimum(MAX_BATCH, 1 + rng.poisson(mean_batch - 1, size=int(requests / mean_batch * 1.3) + 10))
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), requests) + 1]
    failed = rng.random(len(sizes)) < version.batch_failure
    # a batch's shared latency (queueing and its forward pass), then each request's own part
    batch_latency = rng.lognormal(np.log(0.012), 0.35, len(sizes)) * version.latency_scale
    ok_sizes = sizes[~failed]
    latency = np.repeat(batch_latency[~failed], ok_sizes) * rng.lognormal(0.0, 0.15, int(ok_sizes.sum()))
    per_bucket = np.bincount(np.searchsorted(BOUNDS, latency), minlength=len(BOUNDS))[: len(BOUNDS)]
    buckets = tuple(zip(BOUNDS.tolist(), np.cumsum(per_bucket).astype(float).tolist()))
    n = float(sizes.sum())
    return VersionSample(requests=n, errors=float(sizes[failed].sum()), buckets=buckets,
                         batched=n, peers=float((sizes.astype(float) ** 2).sum()))


SPEC = parse_spec({
    "inferenceService": "m", "model": {"version": "v2", "storageUri": "s3://m/v2"},
    "strategy": {"steps": [{"weight": w} for w in range(10, 100, 10)] + [{"weight": 100}]},
    "analysis": {"prometheus": {"url": "http://prometheus"}},
})


def rollout(scenario: Scenario, naive: bool, rng: np.random.Generator) -> str:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    status = plan(SPEC, {}, ("v1", "s3://m/v1"), None, now).status
    for _ in range(500):
        verdict = None
        if analysis_due(SPEC, status, now):
            window = analysis_window(SPEC, status, now)
            weight = status["canaryWeight"]
            canary_n = round(CANARY_PER_WINDOW * window / SPEC.analysis.window)
            c = simulate(scenario.canary, canary_n, window, rng)
            s = simulate(scenario.stable, round(canary_n * (100 - weight) / weight), window, rng)
            if naive:       # requests as independent, and the full significance at every look
                c, s = (dataclasses.replace(x, peers=0.0, batched=0.0) for x in (c, s))
            if naive:
                verdict = judge(SPEC.analysis, Measurements(c, s), alpha=SPEC.analysis.significance)
                verdict.details.pop("errorEvidence")      # each look on its window alone
            else:
                verdict = judge(SPEC.analysis, Measurements(c, s), alpha=look_alpha(SPEC, status),
                                evidence=status.get("errorEvidence"))
        p = plan(SPEC, status, ("v1", "s3://m/v1"), verdict, now, applied=True)
        status = p.status
        if status["phase"] in ("Promoted", "RolledBack", "Paused"):
            return status["phase"]
        now += dt.timedelta(seconds=p.requeue_after or 10.0)
    return "Holding"


KAYENTA_INTERVALS = 6


def kayenta_rollout(scenario: Scenario, rng: np.random.Generator) -> str:
    """Kayenta's judge as its users configure it: each metric's per-interval values for canary
    and stable, a one-sided Mann-Whitney U at 95% two-sided confidence; any metric worse fails."""
    for weight in range(10, 100, 10):
        canary_n = CANARY_PER_WINDOW // KAYENTA_INTERVALS
        seconds = SPEC.analysis.window / KAYENTA_INTERVALS
        c = [simulate(scenario.canary, canary_n, seconds, rng) for _ in range(KAYENTA_INTERVALS)]
        s = [simulate(scenario.stable, canary_n * (100 - weight) // weight, seconds, rng) for _ in range(KAYENTA_INTERVALS)]
        for metric in (lambda v: v.errors / v.requests, lambda v: rollout_stats.quantile(0.99, v.buckets) or 0.0):
            if stats.mannwhitneyu([metric(v) for v in c], [metric(v) for v in s], alternative="greater").pvalue < 0.025:
                return "RolledBack"
    return "Promoted"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{args.rollouts} rollouts each; 9 analysed steps (10%..90%), {CANARY_PER_WINDOW} canary requests "
          f"per window, stable per-request error rate {Version().batch_failure:.1%} in whole-batch failures")
    print(f"{'judge':8} {'scenario':24} {'rolled back':>12} {'promoted':>9} {'held/paused':>12}")
    started = time.perf_counter()
    judges = {"shipped": lambda sc, rng: rollout(sc, False, rng), "naive": lambda sc, rng: rollout(sc, True, rng),
              "kayenta": kayenta_rollout}
    for name, run in judges.items():
        for scenario in SCENARIOS:
            rng = np.random.default_rng(args.seed)
            ends = [run(scenario, rng) for _ in range(args.rollouts)]
            share = {k: ends.count(k) / len(ends) for k in ("RolledBack", "Promoted")}
            print(f"{name:8} {scenario.name:24} {share['RolledBack']:12.1%} "
                  f"{share['Promoted']:9.1%} {1 - sum(share.values()):12.1%}", flush=True)
    print(f"({time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
