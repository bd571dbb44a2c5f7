"""What `kubectl modelrollout get` shows: a ModelRollout as text, from the object alone (and its
Events), as `kubectl argo rollouts get rollout` does. Pure: no I/O."""

from __future__ import annotations

from typing import Any

ICONS = {
    "Idle": "✔",
    "Promoted": "✔",
    "Evaluating": "◌",
    "Shadowing": "◌",
    "Progressing": "◌",
    "Holding": "◌",
    "Waiting": "◌",
    "Paused": "॥",
    "RolledBack": "✖",
    "Failed": "✖",
}
VERDICTS = {"Pass": "✔", "Fail": "✖", "Inconclusive": "?", "Error": "⚠"}


def _pct(x: Any) -> str:
    return "-" if x is None else f"{float(x):.2%}"


def _ms(x: Any) -> str:
    return "-" if x is None or isinstance(x, str) else f"{float(x) * 1000:.3g}ms"


def _p(x: Any) -> str:
    return "" if x is None else f", p={float(x):.2g}"


def _table(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


WIDTH = 18  # "InferenceService: "


def _field(name: str, value: Any) -> str:
    return f"{(name + ':') if name else '':<{WIDTH}}{value}"


def gate_figures(gate: str, a: dict) -> str:
    """One gate's figures from status.lastAnalysis, as the analysis recorded them."""
    if gate == "absoluteError":
        low, high = (a.get("errorRateBounds") or [None, None])[:2]
        return f"error rate {_pct(a.get('rolloutErrorRate', a.get('errorRate')))} ({_pct(low)}-{_pct(high)})"
    if gate == "relativeError":
        return f"canary {_pct(a.get('errorRate'))} vs stable {_pct(a.get('stableErrorRate'))}{_p(a.get('errorPValue'))}"
    if gate == "absoluteLatency":
        low, high = (a.get("latencyP99Bounds") or [None, None])[:2]
        return f"p99 {_ms(a.get('latencyP99'))} ({_ms(low)}-{_ms(high)})"
    if gate == "relativeLatency":
        shares = a.get("tailShares") or [None, None]
        return (
            f"p99 {_ms(a.get('latencyP99'))} vs {_ms(a.get('stableLatencyP99'))}; slower than "
            f"{_ms(a.get('tailBound'))}: {_pct(shares[0])} vs {_pct(shares[1])}{_p(a.get('latencyPValue'))}"
        )
    if gate == "predictionDrift":
        drift = a.get("predictionDrift") or {}
        return "; ".join(f"{out} distance {r.get('distance')} (at least {r.get('lowerBound')})" for out, r in drift.items())
    return ""


def _steps(spec: dict, status: dict) -> list[str]:
    steps = (spec.get("strategy") or {}).get("steps") or []
    interval = (spec.get("strategy") or {}).get("interval", "")
    current, phase = int(status.get("currentStep") or 0), status.get("phase")
    rows = [["STEP", "WEIGHT", "HOLD", ""]]
    for i, step in enumerate(steps):
        if phase == "Promoted" or (status.get("canaryVersion") and i < current):
            state = "✔ passed"
        elif i == current and status.get("canaryVersion") and phase in ICONS:
            state = f"{ICONS[phase]} {phase}"
        else:
            state = ""
        hold = "-" if step.get("weight") == 100 else step.get("hold", interval)
        rows.append([str(i + 1), f"{step.get('weight')}%", str(hold), state])
    return _table(rows, "  ")


def _analysis(a: dict) -> list[str]:
    verdict = a.get("verdict", "")
    out = [
        _field("Analysis", f"{VERDICTS.get(verdict, '')} {verdict} at {a.get('time', '?')}" + (f" (alpha {a['alpha']})" if "alpha" in a else "")),
        f"{'':{WIDTH}}{a.get('reason', '')}",
    ]
    stable = f", stable {a['stableRequests']:g}" if a.get("stableRequests") is not None else ""
    out.append(f"{'':{WIDTH}}requests: canary {float(a.get('requests') or 0):g}{stable}")
    gates = a.get("gates") or {}
    if gates:
        out += _table([["GATE", "RESULT", "FIGURES"]] + [[g, r, gate_figures(g, a)] for g, r in gates.items()], "  ")
    missing = a.get("notMeasured")
    if missing:
        out.append(f"  not measured by this provider: {', '.join(missing)}")
    return out


def _shadow(s: dict) -> str:
    """The shadow step's last verdict: each output's disagreement over its pairs."""
    outputs = s.get("outputs") or {}
    figures = ", ".join(f"{o} {_pct(v.get('disagreement'))} of {v.get('pairs')} pairs" for o, v in sorted(outputs.items()))
    return f"{VERDICTS.get(str(s.get('verdict')), '')} {s.get('verdict')} {s.get('version', '')}: " + (figures or s.get("reason", ""))


def render(rollout: dict, events: list[dict] | None = None) -> str:
    """The screen: who serves what, the steps, the last verdict with its figures, the evaluation,
    the conditions and the latest events."""
    meta, spec, status = rollout.get("metadata") or {}, rollout.get("spec") or {}, rollout.get("status") or {}
    phase = status.get("phase", "(not reconciled yet)")
    lines = [
        _field("Name", meta.get("name")),
        _field("Namespace", meta.get("namespace")),
        _field("Status", f"{ICONS.get(phase, '')} {phase}".strip()),
    ]
    if status.get("message"):
        lines.append(_field("Message", status["message"]))
    if meta.get("generation") and status.get("observedGeneration") not in (None, meta["generation"]):
        lines.append(_field("", f"the operator has not read generation {meta['generation']} yet"))
    lines.append(_field("InferenceService", spec.get("inferenceService")))
    lines.append(_field("Traffic mode", (spec.get("strategy") or {}).get("trafficMode", "serverless")))
    weight = int(status.get("canaryWeight") or 0)
    if status.get("stableVersion"):
        lines.append(_field("Stable", f"{status['stableVersion']}  {status.get('stableStorageUri', '')}  {100 - weight}%"))
    if status.get("canaryVersion"):
        lines.append(_field("Canary", f"{status['canaryVersion']}  {status.get('canaryStorageUri', '')}  {weight}%"))
    lines += ["", *_steps(spec, status), ""]
    if status.get("evaluation"):
        e = status["evaluation"]
        lines.append(
            _field(
                "Evaluation",
                f"{VERDICTS.get(e.get('verdict'), '')} {e.get('verdict')} {e.get('version', '')}: "
                f"candidate {e.get('candidate')} vs stable {e.get('stable')}" + (f" on {e['rows']} rows" if e.get("rows") else ""),
            )
        )
    if status.get("shadow"):
        lines.append(_field("Shadow", _shadow(status["shadow"])))
    if status.get("lastAnalysis"):
        lines += _analysis(status["lastAnalysis"])
    true = [
        c["type"] + (f" ({c['reason']})" if c.get("reason") != phase else "") for c in status.get("conditions") or [] if c.get("status") == "True"
    ]
    if true:
        lines.append(_field("Conditions", ", ".join(true)))
    if events:
        lines += ["", "EVENTS"]
        recent = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")[-8:]
        lines += _table(
            [["TIME", "TYPE", "REASON", "MESSAGE"]]
            + [
                [str(e.get("lastTimestamp") or e.get("eventTime") or ""), e.get("type", ""), e.get("reason", ""), e.get("message", "")]
                for e in recent
            ],
            "  ",
        )
    return "\n".join(lines) + "\n"
