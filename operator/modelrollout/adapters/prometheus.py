"""Prometheus as the analysis's source of measurements: its HTTP API, and the predictor's
series (README, "Metrics") turned into canary and stable samples.

"No values found" is its own outcome (a None sample), and an unreachable or failing server
is reported in Measurements.error; neither raises, so analysis can call them Inconclusive.
"""
from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..analysis import Measurements, VersionSample

Scope = tuple[tuple[str, str], ...]     # label matchers beyond model and version


class PrometheusError(Exception):
    pass


class PrometheusClient:
    """Instant and range queries against Prometheus's HTTP API (/api/v1/query, /query_range)."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.warnings: list[str] = []       # every warning (and info) Prometheus sent with an answer

    def _get(self, path: str, params: dict[str, Any]) -> list[dict]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusError(f"{exc.code} from {self.url}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusError(f"{self.url} unreachable: {getattr(exc, 'reason', exc)}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"query failed: {body.get('error', body)}")
        self.warnings += [str(w) for w in (body.get("warnings") or []) + (body.get("infos") or [])]
        return body["data"]["result"]

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        return self._get("/api/v1/query", params)

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict]:
        return self._get("/api/v1/query_range", {"query": promql, "start": start, "end": end, "step": step})


def _scalar(result: list[dict]) -> float | None:
    return float(result[0]["value"][1]) if result else None


def time_slices(series: list[dict], window: float, count: int = 10) -> tuple[tuple[tuple[float, float], ...], ...]:
    """A range-vector answer of cumulative bucket series (every raw sample in the window) -> the
    histogram of each of `count` equal stretches of the window, ending at the newest sample.
    Each scrape's increment (after a counter reset, the new value) falls in the stretch of its
    timestamp; stretches with no scrape are left out. Exact counts, no extrapolation."""
    points = [(float(s["metric"]["le"]), [(float(t), float(v)) for t, v in s["values"]]) for s in series]
    newest = max((t for _, values in points for t, _ in values), default=0.0)
    width = max(window, 1e-9) / count
    slices: list[dict[float, float]] = [{} for _ in range(count)]
    for le, values in points:
        for (_, before), (t, after) in zip(values, values[1:]):
            i = min(count - 1, int((newest - t) // width))
            slices[i][le] = slices[i].get(le, 0.0) + (after - before if after >= before else after)
    return tuple(tuple(sorted(s.items())) for s in reversed(slices) if s)


def _by_output(result: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in result:
        out.setdefault(r["metric"]["output"], {})[r["metric"]["bin"]] = float(r["value"][1])
    return out


def label_value(value: str) -> str:
    """A string as a PromQL label value inside double quotes (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PredictorMetricsSource:
    """Reads one model version's traffic over a window from the predictor's series."""

    def __init__(self, client: PrometheusClient):
        self.client = client

    @staticmethod
    def queries(model: str, version: str, window: float, scope: Scope = ()) -> dict[str, str]:
        """scope: more exact matchers (the rollout's namespace, a scrape job)."""
        sel = ",".join(f'{k}="{label_value(v)}"' for k, v in (("model", model), ("version", version), *scope))
        w = f"{max(1, round(window))}s"
        return {
            "requests": f"sum(increase(predictor_requests_total{{{sel}}}[{w}]))",
            "errors": f'sum(increase(predictor_requests_total{{{sel},code=~"5.."}}[{w}]))',
            # successes only: fast 429s and errors must not pull the canary's p99 down
            "latency_buckets": f'sum by (le) (increase(predictor_request_duration_seconds_bucket{{{sel},status_class="2xx"}}[{w}]))',
            # the same series' raw samples: how slow requests cluster in time (a stall is one event)
            "latency_samples": f'predictor_request_duration_seconds_bucket{{{sel},status_class="2xx"}}[{w}]',
            "age": f"time() - max(timestamp(predictor_requests_total{{{sel}}}))",
            # the batch design effect: peers / batched (absent on predictors without batching)
            "batched": f"sum(increase(predictor_batch_requests_total{{{sel}}}[{w}]))",
            "peers": f"sum(increase(predictor_batch_peers_total{{{sel}}}[{w}]))",
            # what the version answered, for the drift gate (outputs whose config declares predictions)
            "predictions": f"sum by (output, bin) (increase(predictor_predictions_total{{{sel}}}[{w}]))",
        }

    def sample(self, model: str, version: str, window: float, scope: Scope = ()) -> VersionSample | None:
        q = self.queries(model, version, window, scope)
        requests = _scalar(self.client.query(q["requests"]))
        if requests is None:
            return None  # no series: this version has not been scraped in the window
        buckets = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in self.client.query(q["latency_buckets"]))
        if buckets and not math.isinf(buckets[-1][0]):
            buckets.append((math.inf, buckets[-1][1]))
        def value(name: str) -> float:
            return _scalar(self.client.query(q[name])) or 0.0
        return VersionSample(requests=requests, errors=value("errors"), buckets=tuple(buckets), age=value("age"),
                             batched=value("batched"), peers=value("peers"),
                             slices=time_slices(self.client.query(q["latency_samples"]), window),
                             predictions=_by_output(self.client.query(q["predictions"])))

    def measure(self, model: str, canary: str, stable: str, window: float, scope: Scope = ()) -> Measurements:
        queries = {f"canary_{k}": v for k, v in self.queries(model, canary, window, scope).items()}
        queries.update({f"stable_{k}": v for k, v in self.queries(model, stable, window, scope).items()})
        try:
            self.client.warnings.clear()
            return Measurements(self.sample(model, canary, window, scope), self.sample(model, stable, window, scope), queries,
                                warnings=tuple(dict.fromkeys(self.client.warnings)))
        except PrometheusError as exc:
            return Measurements(None, None, queries, error=str(exc))
