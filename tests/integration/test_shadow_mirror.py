"""The shadow mirror between real predictor processes: a stable version mirrors what it answers to
a candidate named by a config file it reads at run time, and counts how the answers pair up."""
from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from e2e.localstack.prometheus import PrometheusServer
from harness.processes import PredictorProcess, metric
from harness.processes import wait_for as wait_until
from modelrollout.adapters.prometheus import PrometheusClient
from modelrollout.adapters.providers import Target
from modelrollout.adapters.shadow import ShadowSource
from modelrollout.analysis import FAIL, INCONCLUSIVE, PASS, Window
from modelrollout.shadow import ShadowSpec, judge_shadow

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
V2 = ROOT / "models" / "cancer" / "v2"
SHIFTED = ROOT / "tests" / "fixtures" / "models" / "cancer" / "v3-shifted"
HOLDOUT = json.loads((ROOT / "models" / "cancer" / "holdout.json").read_text())["inputs"][0]
ROWS = np.asarray(HOLDOUT["data"], dtype=np.float32).reshape(HOLDOUT["shape"])
DASHBOARD = json.loads((ROOT / "manifests" / "monitoring" / "modelrollout-dashboard.json").read_text())


def infer(url: str, rows: np.ndarray) -> int:
    body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": list(rows.shape),
                                   "data": rows.ravel().tolist()}]}).encode()
    req = urllib.request.Request(f"http://{url}/v2/models/cancer/infer", body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def shadow(p: PredictorProcess, name: str, **labels) -> float:
    return metric(p.metrics(), f"predictor_shadow_{name}", model="cancer", **labels)


def steady(read, quiet: float = 1.0):
    """read()'s value once it has not changed for `quiet` seconds (None until then)."""
    first = read()
    time.sleep(quiet)
    return first if read() == first else None


def send(p: PredictorProcess, rows: np.ndarray, per_request: int = 2) -> int:
    """Every request must be answered 200, whatever the mirror does."""
    sent = 0
    for i in range(0, len(rows) - per_request + 1, per_request):
        assert infer(p.http_url, rows[i:i + per_request]) == 200
        sent += 1
    return sent


def mirrored_after(p: PredictorProcess, before: float, sent: int) -> float:
    """Waits until every mirrored request has an outcome; returns how many were compared."""
    def settled():
        done = sum(shadow(p, "requests_total", outcome=o) for o in ("compared", "failed", "dropped"))
        return done >= before + sent
    wait_until(settled, what="every mirrored request's outcome")
    return shadow(p, "requests_total", outcome="compared")


def test_a_stable_version_mirrors_to_the_candidate_its_config_names(tmp_path):
    config = tmp_path / "shadow.yaml"         # absent: the mirror is off
    with PredictorProcess(V2, name="cancer", log_path=tmp_path / "same.log") as same, \
            PredictorProcess(SHIFTED, name="cancer", log_path=tmp_path / "shifted.log") as shifted, \
            PredictorProcess(V2, name="cancer", env={"SHADOW_CONFIG": str(config)}, log_path=tmp_path / "stable.log") as p:
        send(p, ROWS[:20])
        assert shadow(p, "requests_total") == 0 and metric(same.metrics(), "predictor_requests_total") == 0

        # the same model as the candidate: every pair agrees
        config.write_text(f"url: http://{same.http_url}\nfraction: 1.0\n")
        wait_until(lambda: send(p, ROWS[:2]) and shadow(p, "requests_total", outcome="compared") > 0,
                   what="the mirror to read its config")
        before = shadow(p, "requests_total")
        pairs, disagreements = shadow(p, "pairs_total"), shadow(p, "disagreements_total")
        sent = send(p, ROWS)
        assert mirrored_after(p, before, sent) == before + sent          # fraction 1: every request
        assert shadow(p, "pairs_total", output="probabilities") == pairs + len(ROWS)
        assert shadow(p, "disagreements_total") == disagreements == 0
        assert metric(same.metrics(), "predictor_requests_total", code="200") >= sent   # the candidate answered them

        # retargeted at run time to a candidate whose answers are shifted towards benign
        config.write_text(f"url: http://{shifted.http_url}\nfraction: 1.0\ntimeout: 5\n")
        wait_until(lambda: send(p, ROWS[:2]) and metric(shifted.metrics(), "predictor_requests_total", code="200") > 0,
                   what="the mirror to follow the new config")
        before = shadow(p, "requests_total")
        sent = send(p, ROWS)
        mirrored_after(p, before, sent)
        assert shadow(p, "disagreements_total", output="probabilities") > 0.1 * len(ROWS)

        # emptied: off again, and nothing more reaches the candidate
        config.write_text("")
        time.sleep(1.5)                                   # the mirror re-reads its file each second
        answered = metric(shifted.metrics(), "predictor_requests_total")
        send(p, ROWS[:40])
        assert metric(shifted.metrics(), "predictor_requests_total") == answered


def test_a_candidate_that_cannot_answer_is_counted_as_failed_and_users_never_notice(tmp_path):
    config = tmp_path / "shadow.yaml"
    with PredictorProcess(V2, name="cancer", log_path=tmp_path / "gone.log") as gone:
        gone_url = gone.http_url
    config.write_text(f"url: http://{gone_url}\nfraction: 0.5\ntimeout: 1\n")
    with PredictorProcess(V2, name="cancer", env={"SHADOW_CONFIG": str(config)}, log_path=tmp_path / "stable.log") as p:
        sent = send(p, ROWS[:100])
        wait_until(lambda: shadow(p, "requests_total", outcome="failed") > 0, what="a failed mirror")
        assert shadow(p, "requests_total", outcome="compared") == 0
        outcomes = wait_until(lambda: steady(lambda: shadow(p, "requests_total")), what="the outcomes to settle")
        assert 0.3 * sent < outcomes < 0.7 * sent         # about half were mirrored, and every one failed
        assert metric(p.metrics(), "predictor_requests_total", code="200") == sent


def test_a_bad_config_turns_the_mirror_off_and_serving_goes_on(tmp_path):
    config = tmp_path / "shadow.yaml"
    config.write_text("url: latest-cancer\nfraction: 2\n")
    with PredictorProcess(V2, name="cancer", env={"SHADOW_CONFIG": str(config)}, log_path=tmp_path / "stable.log") as p:
        send(p, ROWS[:20])
        assert shadow(p, "requests_total") == 0
    assert "shadow mirror off" in (tmp_path / "stable.log").read_text() and "shadow.yaml.url" in (tmp_path / "stable.log").read_text()


def test_prometheus_and_the_shadow_verdict_see_what_the_mirror_counted(tmp_path):
    """The operator's side: the mirror's series scraped by a real Prometheus, read by the shadow
    adapter from raw samples, judged: a candidate answering like stable passes, v3-shifted fails."""
    config = tmp_path / "shadow.yaml"
    spec = ShadowSpec(min_pairs=100, max_disagreement=0.1)
    with PredictorProcess(V2, name="cancer", log_path=tmp_path / "same.log") as same, \
            PredictorProcess(SHIFTED, name="cancer", log_path=tmp_path / "shifted.log") as shifted, \
            PredictorProcess(V2, name="cancer", env={"SHADOW_CONFIG": str(config)}, log_path=tmp_path / "stable.log") as p, \
            PrometheusServer([p.http_url]) as prom:
        source = ShadowSource(PrometheusClient(prom.url), scrape_interval=1.0)
        stable = Target("default", "cancer", "cancer", "v2")
        for candidate, outcome in ((same, PASS), (shifted, FAIL)):
            config.write_text("")
            time.sleep(1.5)                               # the mirror reads its file each second: off
            since = time.time()
            wait_until(lambda: _scraped_after(prom.url, since), what="a scrape after the step began")
            config.write_text(f"url: http://{candidate.http_url}\nfraction: 1.0\n")
            wait_until(lambda: send(p, ROWS[:1], 1) and metric(candidate.metrics(), "predictor_requests_total") > 0,
                       what="the mirror to follow its config")
            send(p, ROWS, per_request=1)

            def verdict():
                sample, queries, error = source.measure(stable, Window(since, time.time(), since))
                assert error is None and queries["pairs"].startswith('predictor_shadow_pairs_total{model="cancer",version="v2"}')
                v = judge_shadow(spec, sample, 0.01)
                return v if v.outcome != INCONCLUSIVE or (sample and sample.compared > len(ROWS)) else None
            v = wait_until(verdict, what="a shadow verdict")
            assert v.outcome == outcome, v.reason
            assert v.details["failed"] == 0 and v.details["outputs"]["probabilities"]["designEffect"] == 1.0
        # the dashboard's shadow panels read the same series (Grafana's All is a regex matching any value)
        panels = {p["id"]: p["targets"][0]["expr"].replace("$namespace", ".*").replace("$model", "cancer")
                  for p in DASHBOARD["panels"] if "predictor_shadow_" in p["targets"][0]["expr"]}
        client = PrometheusClient(prom.url)
        disagreeing = wait_until(lambda: client.query(panels[10]), what="the disagreement panel's series")
        assert {s["metric"]["output"] for s in disagreeing} == {"probabilities"} and float(disagreeing[0]["value"][1]) > 0
        outcomes = {s["metric"]["outcome"] for s in client.query(panels[11])}
        assert "compared" in outcomes


def _scraped_after(url: str, since: float) -> bool:
    samples = PrometheusClient(url).query("timestamp(predictor_shadow_requests_total)")
    return bool(samples) and all(float(s["value"][1]) > since for s in samples)
