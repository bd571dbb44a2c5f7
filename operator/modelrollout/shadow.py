"""The shadow step's verdict, before the candidate serves anyone. Pure: (spec, sample, alpha).

Stable's predictor mirrors a fraction of the requests it answers to the candidate
(predictor/mirror.py) and counts, per output, the pairs and the pairs whose class (or declared
value bin) differs: the same live inputs answered by both, so the comparison needs no labels and
no second population. Per output, against spec.maxDisagreement:

- Fail when the disagreement rate is significantly above it (its lower Wilson bound is),
- Pass when every output has at least minPairs pairs and is significantly below it,
- Inconclusive otherwise: the step goes on, up to its duration.

The rows of one request share their caller and moment, so counts are divided by the mean pairs
per compared request (the design effect of fully correlated clusters of that size), as the gates
divide by a batch's. The looks spend their own share of the rollout's false-rollback budget, the
k-th look share/(k(k+1)), which sums to the share however many looks the duration holds.
"""

from __future__ import annotations

import dataclasses
import math
import urllib.parse
from typing import Any, Mapping

from . import stats
from .analysis import ERROR, FAIL, INCONCLUSIVE, PASS, Verdict
from .phases import Phase
from .spec import RolloutSpec, ShadowSpec

__all__ = ["MIRROR_CONFIG_MAP", "ShadowSpec", "ShadowSample", "judge_shadow", "mirror_key", "shadow_alpha", "wanted_mirror"]
MIRROR_CONFIG_MAP = "modelrollout-shadow"  # the shipped ServingRuntimes mount it, optional, in every predictor

MOSTLY_FAILED = 0.5  # mirrored requests the candidate did not answer: beyond this, an Error
FEW_TO_JUDGE = 10  # ...once at least this many were sent


@dataclasses.dataclass(frozen=True)
class ShadowSample:
    """What stable's mirror counted since the shadow step began."""

    pairs: Mapping[str, float]  # output -> paired predictions
    disagreements: Mapping[str, float]  # output -> pairs that differ (outputs that count them)
    compared: float  # mirrored requests answered and paired
    failed: float  # mirrored requests the candidate did not answer validly
    dropped: float = 0.0  # never sent: the mirror's queue was full


def shadow_alpha(significance: float, share: float, look: int) -> float:
    """What the look-th shadow look (from 1) may spend."""
    return significance * share / (look * (look + 1))


def _bad(sample: ShadowSample) -> str | None:
    numbers = (sample.compared, sample.failed, sample.dropped, *sample.pairs.values(), *sample.disagreements.values())
    if any(not math.isfinite(x) or x < 0 for x in numbers):
        return "the shadow counts are not finite, non-negative numbers"
    over = [o for o, k in sample.disagreements.items() if k > sample.pairs.get(o, 0.0) + 1e-9]
    return f"output {over[0]} has more disagreements than pairs" if over else None


def judge_shadow(spec: ShadowSpec, sample: ShadowSample | None, alpha: float) -> Verdict:
    if sample is None or sample.compared + sample.failed <= 0:
        return Verdict(INCONCLUSIVE, "no mirrored request has been answered yet")
    bad = _bad(sample)
    if bad:
        return Verdict(INCONCLUSIVE, f"malformed measurement: {bad}")
    sent = sample.compared + sample.failed
    details: dict[str, Any] = {
        "compared": round(sample.compared),
        "failed": round(sample.failed),
        "dropped": round(sample.dropped),
        "alpha": round(alpha, 8),
    }
    if sent >= FEW_TO_JUDGE and sample.failed / sent > MOSTLY_FAILED:
        return Verdict(
            ERROR,
            f"the candidate answered {sample.compared:.0f} of {sent:.0f} mirrored requests: the mirror cannot reach it, or it fails them",
            details,
        )
    outputs = sorted(o for o in sample.disagreements if sample.pairs.get(o, 0.0) > 0)
    if not outputs:
        return Verdict(INCONCLUSIVE, "no output counts disagreements yet (outputs need `predictions` in the model's config)", details)
    judged: dict[str, dict[str, Any]] = {}
    limit = spec.max_disagreement
    for o in outputs:
        n, k = sample.pairs[o], sample.disagreements[o]
        effect = max(1.0, n / sample.compared) if sample.compared > 0 else 1.0
        low, high = stats.proportion_bounds(k / effect, n / effect, 1.0 - 2 * alpha)
        judged[o] = {"pairs": round(n), "disagreement": round(k / n, 6), "bounds": [round(low, 6), round(high, 6)], "designEffect": round(effect, 3)}
    details["outputs"] = judged
    worst = max(outputs, key=lambda o: judged[o]["bounds"][0])
    w = judged[worst]
    if w["bounds"][0] > limit:
        return Verdict(
            FAIL,
            f"shadow: output {worst} disagrees with stable on {w['disagreement']:.2%} of "
            f"{w['pairs']} paired predictions, above {limit:.2%} (lower bound {w['bounds'][0]:.2%})",
            details,
            tested=True,
        )
    short = [o for o in outputs if judged[o]["pairs"] < spec.min_pairs]
    if short:
        return Verdict(
            INCONCLUSIVE, f"shadow: {judged[short[0]]['pairs']} < {spec.min_pairs} paired predictions of output {short[0]}", details, tested=True
        )
    unsure = [o for o in outputs if judged[o]["bounds"][1] >= limit]
    if unsure:
        u = judged[unsure[0]]
        return Verdict(
            INCONCLUSIVE,
            f"shadow: output {unsure[0]} disagrees on {u['disagreement']:.2%}, not yet "
            f"significantly below {limit:.2%} (upper bound {u['bounds'][1]:.2%})",
            details,
            tested=True,
        )
    return Verdict(
        PASS,
        "shadow: " + ", ".join(f"{o} disagrees on {judged[o]['disagreement']:.2%} of {judged[o]['pairs']}" for o in outputs) + f", below {limit:.2%}",
        details,
        tested=True,
    )


# -- the mirror's file -------------------------------------------------------------------------


def mirror_key(inference_service: str) -> str:
    """The key of MIRROR_CONFIG_MAP that an InferenceService's pods read (SHADOW_CONFIG in the runtimes)."""
    return f"{inference_service}.yaml"


def mirror_file(spec: ShadowSpec, stable_version: str, candidate_url: str) -> dict[str, Any]:
    """What stable's mirror reads (predictor/shadow.py's MirrorConfig). Every pod of the
    InferenceService mounts it, the candidate's too: sourceVersion keeps the mirror in stable's."""
    out: dict[str, Any] = {"url": candidate_url, "fraction": spec.fraction, "sourceVersion": stable_version}
    if spec.gateway:
        out.update(url=spec.gateway, host=urllib.parse.urlsplit(candidate_url).hostname)
    return out


def wanted_mirror(
    spec: RolloutSpec, status: Mapping[str, Any], addresses: Mapping[str, str] | None, written: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The mirror's file while the shadow step runs (status as planned), None otherwise. An
    address missing for a moment (a revision restarting) leaves what was written."""
    if status.get("phase") != Phase.SHADOWING or not status.get("shadowStartedAt") or spec.shadow is None:
        return None
    if not addresses:
        return dict(written) if written else None
    return mirror_file(spec.shadow, str(status["stableVersion"]), addresses["candidate"])
