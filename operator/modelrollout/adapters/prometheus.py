"""Prometheus as the analysis's source of measurements: its HTTP API, and the raw samples of a
provider's series (providers.py) turned into canary and stable samples, per scrape.

"No values found" is its own outcome (a None sample), and an unreachable or failing server
is reported in Measurements.error; neither raises, so analysis can call them Inconclusive.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..analysis import Measurements, Scrape, VersionSample, Window
from ..schedule import timestamp
from .providers import PredictorSeries, Provider, Scope, Target


class PrometheusError(Exception):
    pass


class PrometheusClient:
    """Instant and range queries against Prometheus's HTTP API (/api/v1/query, /query_range)."""

    def __init__(self, url: str, timeout: float = 5.0, headers: dict[str, str] | None = None, ca_pem: str | None = None):
        """headers: sent with every query (Authorization, X-Scope-OrgID); ca_pem: the CA an
        https:// Prometheus's certificate must chain to (default: the system's)."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = dict(headers or {})
        try:
            self.tls = ssl.create_default_context(cadata=ca_pem) if ca_pem else None
        except (ssl.SSLError, ValueError) as exc:
            raise PrometheusError(f"the CA for {self.url} is not PEM certificates: {exc}") from None
        self.warnings: list[str] = []  # every warning (and info) Prometheus sent with an answer

    def _get(self, path: str, params: dict[str, Any]) -> list[dict]:
        request = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}", headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.tls) as resp:
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


def increments(series: list[dict], window: Window, dimensions: frozenset[str] = PredictorSeries.dimensions, born: float | None = None):
    """(labels, (pod, scrape time), increment) of every pair of consecutive raw samples whose later
    one is in the window and whose earlier one is not before `since`: exact per-scrape counts
    (after a counter reset, the new value), each counted in exactly one of consecutive windows, and
    no extrapolation, unlike increase(). born: a series first sampled after it (and after
    `since`) was not there before; runtimes create a series at its first request (a new pod, a
    first 500), so its first value is its first increment, not lost."""
    for s in series:
        labels = s["metric"]
        pod = tuple(sorted((k, v) for k, v in labels.items() if k not in dimensions))
        values = [(float(t), float(v)) for t, v in s["values"]]
        if born is not None and values and values[0][0] > max(born, window.since):
            values.insert(0, (values[0][0] - 1e-9, 0.0))
        for (ta, before), (tb, after) in zip(values, values[1:]):
            if ta >= window.since and window.start < tb <= window.end:
                yield labels, (pod, tb), after - before if after >= before else after


def version_sample(
    answers: dict[str, list[dict]], window: Window, provider: Provider = PredictorSeries(), born: float | None = None
) -> VersionSample | None:
    """One version's VersionSample from the raw samples of its series (range-vector answers by
    name: requests, and where the provider has them errors, latency, batched, peers,
    predictions); None when it has no request series. born: as increments()."""
    if not answers.get("requests"):
        return None  # no series: this version has not been scraped
    dims = provider.dimensions
    scrapes: dict[tuple, list] = {}  # (pod, time) -> [requests, errors, {le: count}]
    for labels, key, inc in increments(answers["requests"], window, dims, born):
        cluster = scrapes.setdefault(key, [0.0, 0.0, {}])
        cluster[0] += inc
        cluster[1] += inc if provider.failed(labels) else 0.0
    for labels, key, inc in increments(answers.get("errors") or [], window, dims, born):
        scrapes.setdefault(key, [0.0, 0.0, {}])[1] += inc
    for labels, key, inc in increments(answers.get("latency") or [], window, dims, born):
        le = float(labels["le"])
        histogram = scrapes.setdefault(key, [0.0, 0.0, {}])[2]
        histogram[le] = histogram.get(le, 0.0) + inc
    whole: dict[float, float] = {}
    for _, _, histogram in scrapes.values():
        for le, n in histogram.items():
            whole[le] = whole.get(le, 0.0) + n
    predictions: dict[str, dict[str, float]] = {}
    for labels, _, inc in increments(answers.get("predictions") or [], window, dims, born):
        bins = predictions.setdefault(labels["output"], {})
        bins[labels["bin"]] = bins.get(labels["bin"], 0.0) + inc
    newest = max((float(t) for s in answers["requests"] for t, _ in s["values"] if float(t) <= window.end), default=window.end)
    ordered = [scrapes[k] for k in sorted(scrapes, key=lambda k: (k[1], k[0]))]

    def total(name: str) -> float:
        return sum(inc for _, _, inc in increments(answers.get(name) or [], window, dims, born))

    return VersionSample(
        requests=sum(c[0] for c in ordered),
        errors=sum(c[1] for c in ordered),
        buckets=_buckets(whole),
        age=max(0.0, window.end - newest),
        batched=total("batched"),
        peers=total("peers"),
        scrapes=tuple(Scrape(c[0], c[1], _buckets(c[2])) for c in ordered),
        predictions=predictions,
    )


def _buckets(histogram: dict[float, float]) -> tuple[tuple[float, float], ...]:
    out = sorted(histogram.items())
    if out and not math.isinf(out[-1][0]):
        out.append((math.inf, out[-1][1]))
    return tuple(out)


class PrometheusSource:
    """Reads two versions' traffic over a window from the raw samples of a provider's series."""

    def __init__(self, client: PrometheusClient, provider: Provider = PredictorSeries(), scrape_interval: float = 15.0):
        self.client, self.provider = client, provider
        self.scrape_interval = scrape_interval  # the range reaches back two of them before the window

    def reach(self, window: Window) -> float:
        """Where the range starts: two scrapes before the window, also before `since`, so that a
        series first seen after reach + 1.5 intervals is known to be new (increments' born)."""
        return window.start - 2 * self.scrape_interval

    def queries(self, target: Target, window: Window, scope: Scope = ()) -> dict[str, str]:
        """scope: more exact matchers (the rollout's namespace, a scrape job)."""
        r = f"{max(1, math.ceil(window.end - self.reach(window)) + 1)}s"
        return self.provider.queries(target, r, f"{max(1, round(self.scrape_interval))}s", scope)

    def sample(self, target: Target, window: Window, scope: Scope = ()) -> VersionSample | None:
        q = self.queries(target, window, scope)
        return version_sample(
            {name: self.client.query(promql, at=window.end) for name, promql in q.items()}, window, self.provider, born=self.born(window)
        )

    def born(self, window: Window) -> float | None:
        """increments' `born`, for runtimes that create a series at its first request (queue-proxy,
        custom); the predictor's series exist from zero, and after a scrape outage longer than the
        reach a series' first sample is old counts, not new ones (not told apart yet)."""
        return None if self.provider.name == "modelrollout" else self.reach(window) + 1.5 * self.scrape_interval

    def measure(self, canary: Target, stable: Target | None, window: Window, scope: Scope = ()) -> Measurements:
        """stable None: the canary alone (a guardrail's look)."""
        queries = {f"canary_{k}": v for k, v in self.queries(canary, window, scope).items()}
        if stable is not None:
            queries.update({f"stable_{k}": v for k, v in self.queries(stable, window, scope).items()})
        start, end, since = (timestamp(dt.datetime.fromtimestamp(t, dt.timezone.utc)) for t in (window.start, window.end, window.since))
        span = (start, end, since)
        lacks = self.provider.lacks
        try:
            self.client.warnings.clear()
            return Measurements(
                self.sample(canary, window, scope),
                None if stable is None else self.sample(stable, window, scope),
                queries,
                warnings=tuple(dict.fromkeys(self.client.warnings)),
                window=span,
                lacks=lacks,
            )
        except PrometheusError as exc:
            return Measurements(None, None, queries, error=str(exc), window=span, lacks=lacks)
