"""The predictor's life as a real server process: readiness, the repository extension, the
forward-pass watchdog and clients that go away (tritonclient and raw sockets as the clients)."""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml
from tritonclient.utils import InferenceServerException

from harness.processes import PredictorProcess, metric
from harness.processes import wait_for as wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CANCER = ROOT / "models" / "cancer" / "v2"
SLOW = ROOT / "tests" / "fixtures" / "models" / "cancer" / "v3-slow"
ROWS = np.random.default_rng(0).standard_normal((64, 30)).astype(np.float32)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def infer(url: str, rows: np.ndarray, model: str = "cancer"):
    inp = httpclient.InferInput("features", list(rows.shape), "FP32")
    inp.set_data_from_numpy(rows)
    return httpclient.InferenceServerClient(url).infer(model, [inp]).as_numpy("probabilities")


def test_with_the_access_log_on_each_rest_request_and_grpc_call_logs_a_line(tmp_path):
    """`--access_log true` on the command line (KServe's import-time parse once read it as its
    own --access_log_format and the server never started)."""
    log = tmp_path / "p.log"
    with PredictorProcess(CANCER, "--access_log", "true", log_path=log) as p:
        assert infer(p.http_url, ROWS[:2]).shape == (2, 2)
        inp = grpcclient.InferInput("features", [1, 30], "FP32")
        inp.set_data_from_numpy(ROWS[:1])
        assert grpcclient.InferenceServerClient(p.grpc_url).infer("cancer", [inp]).as_numpy("probabilities").shape == (1, 2)
        wait_until(lambda: "POST /v2/models/cancer/infer" in log.read_text(), what="the REST access line")
        wait_until(lambda: "grpc method: /inference.GRPCInferenceService/ModelInfer" in log.read_text(),
                   what="the gRPC call's line")


def test_the_repository_extension_is_off_by_default(tmp_path):
    with PredictorProcess(CANCER, log_path=tmp_path / "p.log") as p:
        with pytest.raises(InferenceServerException, match="--enable_repository") as refused:
            httpclient.InferenceServerClient(p.http_url).unload_model("cancer")
        assert refused.value.status() == "403"
        with pytest.raises(InferenceServerException, match="--enable_repository") as refused:
            grpcclient.InferenceServerClient(p.grpc_url).load_model("cancer")
        assert refused.value.status() == "StatusCode.PERMISSION_DENIED"
        assert httpclient.InferenceServerClient(p.http_url).is_model_ready("cancer")
        assert infer(p.http_url, ROWS[:2]).shape == (2, 2)


def test_with_the_extension_on_readiness_follows_unload_and_a_reload_keeps_the_flags(tmp_path):
    with PredictorProcess(CANCER, "--enable_repository", "true", "--max_queue_size", "40", "--max_batch_size", "8",
                          log_path=tmp_path / "p.log") as p:
        client = httpclient.InferenceServerClient(p.http_url)
        client.unload_model("cancer")
        assert not client.is_model_ready("cancer")
        assert status_of(f"http://{p.http_url}/v2/health/ready") != 200      # KServe's own said ready
        assert not grpcclient.InferenceServerClient(p.grpc_url).is_server_ready()
        client.load_model("cancer")
        assert client.is_model_ready("cancer") and status_of(f"http://{p.http_url}/v2/health/ready") == 200
        assert infer(p.http_url, ROWS[:2]).shape == (2, 2)
        with pytest.raises(InferenceServerException, match="at most 40"):   # --max_queue_size survived the reload
            infer(p.http_url, ROWS[:41])


def stalling_model(folder: Path) -> Path:
    """cancer's signature; a row whose first feature is N > 0 makes the forward pass do 1000 N
    matrix products (stall_for() picks N for a time on this machine), long past the watchdog."""
    class Stall(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = torch.ones(256, 256) / 256.0
            for _ in range(int(x[0, 0].item() * 1000)):
                m = m @ m
            return torch.softmax(x[:, :2] * 0 + m[0, :2], dim=1)
    torch.jit.script(Stall()).save(str(folder / "model.pt"))
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "name": "cancer", "version": "stall", "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 30]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
        "batching": {"max_batch_size": 4, "forward_timeout_ms": 500}}))
    return folder


def stall_for(seconds: float) -> float:
    """The first feature that makes stalling_model's pass take about `seconds` on this machine, with
    the one torch thread the test predictors run (a fixed count took 0.48 s, under the watchdog's
    0.5 s, on a faster CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m, started = torch.ones(256, 256) / 256.0, time.perf_counter()
        for _ in range(200):
            m = m @ m
        per_product = (time.perf_counter() - started) / 200
    finally:
        torch.set_num_threads(threads)
    return seconds / per_product / 1000


def test_the_watchdog_fails_a_stuck_pass_and_readiness_is_false_until_it_returns(tmp_path):
    with PredictorProcess(stalling_model(tmp_path), log_path=tmp_path / "p.log") as p:
        stuck = np.zeros((1, 30), np.float32)
        stuck[0, 0] = stall_for(3.0)
        started = time.monotonic()
        with pytest.raises(InferenceServerException, match="did not return within 0.5s") as failed:
            infer(p.http_url, stuck)
        assert failed.value.status() == "500" and time.monotonic() - started < 2.5
        assert status_of(f"http://{p.http_url}/v2/health/ready") != 200
        assert status_of(f"http://{p.http_url}/v2/models/cancer/ready") != 200
        wait_until(lambda: status_of(f"http://{p.http_url}/v2/health/ready") == 200, what="the pass to return")
        assert infer(p.http_url, np.zeros((1, 30), np.float32)).shape == (1, 2)
        assert metric(p.metrics(), "predictor_requests_total", code="500", protocol="rest") == 1


def test_a_rest_client_that_goes_away_is_counted_499_and_its_request_leaves_the_queue(tmp_path):
    """60 requests queue behind a slow model (12 ms a pass, one row each); their clients hang up.
    Before, each ran anyway and counted as 200 for nobody."""
    with PredictorProcess(SLOW, "--max_batch_size", "1", log_path=tmp_path / "p.log") as p:
        body = json.dumps({"inputs": [{"name": "features", "shape": [1, 30], "datatype": "FP32",
                                       "data": ROWS[0].tolist()}]}).encode()
        request = (f"POST /v2/models/cancer/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        sockets = []
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", p.http_port))
            s.sendall(request)
            sockets.append(s)
        wait_until(lambda: metric(p.metrics(), "predictor_queue_depth") > 10, what="a queue")
        for s in sockets:
            s.close()
        labels = {"model": "cancer", "version": "v3-slow", "protocol": "rest"}

        def settled():
            text = p.metrics()
            answered = sum(metric(text, "predictor_requests_total", code=c, **labels) for c in ("200", "499"))
            return text if answered == 60 and metric(text, "predictor_queue_depth") == 0 else None
        text = wait_until(settled, what="every request answered or cancelled")
        cancelled = metric(text, "predictor_requests_total", code="499", **labels)
        assert cancelled > 10
        # cancelled requests never ran, but for those whose pass began before the server had read
        # their hang-up (the 60 disconnects take it a few ms, a pass 12 ms): one, sometimes two
        assert metric(text, "predictor_batch_requests_total", model="cancer") <= 60 - cancelled + 3
        assert infer(p.http_url, ROWS[:1]).shape == (1, 2)                      # and it still serves


def test_on_sigterm_readiness_fails_first_and_both_protocols_serve_through_the_delay(tmp_path):
    with PredictorProcess(CANCER, env={"SHUTDOWN_DELAY": "4"}, log_path=tmp_path / "p.log") as p:
        p.proc.send_signal(15)
        signalled = time.monotonic()
        wait_until(lambda: status_of(f"http://{p.http_url}/v2/health/ready") != 200, what="readiness to fail")
        assert not grpcclient.InferenceServerClient(p.grpc_url).is_server_ready()
        # new connections are still accepted and answered while endpoints catch up
        assert infer(p.http_url, ROWS[:2]).shape == (2, 2)
        inp = grpcclient.InferInput("features", [2, 30], "FP32")
        inp.set_data_from_numpy(ROWS[:2])
        assert grpcclient.InferenceServerClient(p.grpc_url).infer("cancer", [inp]).as_numpy("probabilities").shape == (2, 2)
        assert time.monotonic() - signalled < 4 and p.proc.poll() is None
        assert p.proc.wait(30) == 0 and time.monotonic() - signalled >= 4
