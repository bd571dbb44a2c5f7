"""Prometheus as the analysis's source of measurements: its HTTP API, and the raw samples of the
predictor's series (README, "Metrics") turned into canary and stable samples, per scrape.

"No values found" is its own outcome (a None sample), and an unreachable or failing server
is reported in Measurements.error; neither raises, so analysis can call them Inconclusive.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..analysis import Measurements, Scrape, VersionSample, Window
from ..schedule import timestamp

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


# labels that tell a series of one pod apart from its others; the rest name the pod (the cluster)
DIMENSIONS = frozenset({"__name__", "code", "protocol", "le", "status_class", "output", "bin"})


def increments(series: list[dict], window: Window):
    """(labels, (pod, scrape time), increment) of every pair of consecutive raw samples whose later
    one is in the window and whose earlier one is not before `since`: exact per-scrape counts
    (after a counter reset, the new value), each counted in exactly one of consecutive windows, and
    no extrapolation, unlike increase()."""
    for s in series:
        labels = s["metric"]
        pod = tuple(sorted((k, v) for k, v in labels.items() if k not in DIMENSIONS))
        values = [(float(t), float(v)) for t, v in s["values"]]
        for (ta, before), (tb, after) in zip(values, values[1:]):
            if ta >= window.since and window.start < tb <= window.end:
                yield labels, (pod, tb), after - before if after >= before else after


def _total(series: list[dict], window: Window) -> float:
    return sum(inc for _, _, inc in increments(series, window))


def version_sample(answers: dict[str, list[dict]], window: Window) -> VersionSample | None:
    """One version's VersionSample from the raw samples of its series (range-vector answers by
    name: requests, latency, batched, peers, predictions); None when it has no request series."""
    if not answers["requests"]:
        return None                         # no series: this version has not been scraped
    scrapes: dict[tuple, list] = {}         # (pod, time) -> [requests, errors, {le: count}]
    for labels, key, inc in increments(answers["requests"], window):
        cluster = scrapes.setdefault(key, [0.0, 0.0, {}])
        cluster[0] += inc
        cluster[1] += inc if labels.get("code", "").startswith("5") else 0.0
    for labels, key, inc in increments(answers["latency"], window):
        le = float(labels["le"])
        histogram = scrapes.setdefault(key, [0.0, 0.0, {}])[2]
        histogram[le] = histogram.get(le, 0.0) + inc
    whole: dict[float, float] = {}
    for _, _, histogram in scrapes.values():
        for le, n in histogram.items():
            whole[le] = whole.get(le, 0.0) + n
    predictions: dict[str, dict[str, float]] = {}
    for labels, _, inc in increments(answers["predictions"], window):
        bins = predictions.setdefault(labels["output"], {})
        bins[labels["bin"]] = bins.get(labels["bin"], 0.0) + inc
    newest = max((float(t) for s in answers["requests"] for t, _ in s["values"] if float(t) <= window.end),
                 default=window.end)
    ordered = [scrapes[k] for k in sorted(scrapes, key=lambda k: (k[1], k[0]))]
    return VersionSample(
        requests=sum(c[0] for c in ordered), errors=sum(c[1] for c in ordered), buckets=_buckets(whole),
        age=max(0.0, window.end - newest), batched=_total(answers["batched"], window),
        peers=_total(answers["peers"], window),
        scrapes=tuple(Scrape(c[0], c[1], _buckets(c[2])) for c in ordered), predictions=predictions)


def _buckets(histogram: dict[float, float]) -> tuple[tuple[float, float], ...]:
    out = sorted(histogram.items())
    if out and not math.isinf(out[-1][0]):
        out.append((math.inf, out[-1][1]))
    return tuple(out)


def label_value(value: str) -> str:
    """A string as a PromQL label value inside double quotes (backslash, quote and newline escaped)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class PredictorMetricsSource:
    """Reads one model version's traffic over a window from the raw samples of the predictor's series."""

    def __init__(self, client: PrometheusClient, scrape_interval: float = 15.0):
        self.client = client
        self.scrape_interval = scrape_interval    # the range reaches back two of them before the window

    def queries(self, model: str, version: str, window: Window, scope: Scope = ()) -> dict[str, str]:
        """scope: more exact matchers (the rollout's namespace, a scrape job)."""
        sel = ",".join(f'{k}="{label_value(v)}"' for k, v in (("model", model), ("version", version), *scope))
        reach = max(window.since, window.start - 2 * self.scrape_interval)
        r = f"{max(1, math.ceil(window.end - reach) + 1)}s"
        return {
            "requests": f"predictor_requests_total{{{sel}}}[{r}]",
            # successes only: fast 429s and errors must not pull the canary's p99 down
            "latency": f'predictor_request_duration_seconds_bucket{{{sel},status_class="2xx"}}[{r}]',
            # the batch design effect: peers / batched (absent on predictors without batching)
            "batched": f"predictor_batch_requests_total{{{sel}}}[{r}]",
            "peers": f"predictor_batch_peers_total{{{sel}}}[{r}]",
            # what the version answered, for the drift gate (outputs whose config declares predictions)
            "predictions": f"predictor_predictions_total{{{sel}}}[{r}]",
        }

    def sample(self, model: str, version: str, window: Window, scope: Scope = ()) -> VersionSample | None:
        q = self.queries(model, version, window, scope)
        return version_sample({name: self.client.query(promql, at=window.end) for name, promql in q.items()}, window)

    def measure(self, model: str, canary: str, stable: str, window: Window, scope: Scope = ()) -> Measurements:
        queries = {f"canary_{k}": v for k, v in self.queries(model, canary, window, scope).items()}
        queries.update({f"stable_{k}": v for k, v in self.queries(model, stable, window, scope).items()})
        span = tuple(timestamp(dt.datetime.fromtimestamp(t, dt.timezone.utc)) for t in (window.start, window.end, window.since))
        try:
            self.client.warnings.clear()
            return Measurements(self.sample(model, canary, window, scope), self.sample(model, stable, window, scope), queries,
                                warnings=tuple(dict.fromkeys(self.client.warnings)), window=span)
        except PrometheusError as exc:
            return Measurements(None, None, queries, error=str(exc), window=span)
