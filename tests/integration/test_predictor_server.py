"""The predictor as a real server process, called by tritonclient (a V2 client nobody here wrote)."""
from __future__ import annotations

import concurrent.futures
import http.client
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from predictor.config import load_model_config
from predictor.runtime import TorchRunner, load_module
from harness.processes import PredictorProcess, metric

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CANCER = ROOT / "models" / "cancer" / "v2"
WEATHER = ROOT / "models" / "weather" / "v1"


def reference(model_dir: Path, x: np.ndarray) -> np.ndarray:
    config = load_model_config(model_dir)
    return TorchRunner(load_module(model_dir, config), config)([x])[0]


def http_infer(url, model, x, name, binary=True):
    client = httpclient.InferenceServerClient(url)
    inp = httpclient.InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    return client.infer(model, [inp]).as_numpy(load_model_config(CANCER if model == "cancer" else WEATHER).outputs[0].name)


def grpc_infer(url, model, x, name, out_name):
    client = grpcclient.InferenceServerClient(url)
    inp = grpcclient.InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return client.infer(model, [inp]).as_numpy(out_name)


@pytest.fixture(scope="module", params=["lean", "kserve"])
def cancer(request, tmp_path_factory):
    """The same conformance tests against both inference paths: the lean one (the default) and
    KServe's own FastAPI and gRPC handlers (--lean_path false)."""
    args = [] if request.param == "lean" else ["--lean_path", "false"]
    with PredictorProcess(CANCER, *args, log_path=tmp_path_factory.mktemp("logs") / f"cancer-{request.param}.log") as p:
        p.path = request.param
        yield p


def lean_only(server) -> None:
    if server.path != "lean":
        pytest.skip("KServe's REST path (--lean_path false) slices binary inputs by binary_data_size without "
                    "checking them and refuses FP16 in JSON: the lean path is where these hold")


@pytest.fixture(scope="module")
def cancer_rows():
    from sklearn.datasets import load_breast_cancer
    return load_breast_cancer().data.astype(np.float32)


def test_metadata_and_readiness_report_the_real_model(cancer):
    client = httpclient.InferenceServerClient(cancer.http_url)
    assert client.is_server_ready() and client.is_model_ready("cancer")
    meta = client.get_model_metadata("cancer")
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 30]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]
    assert meta["platform"] == "pytorch_torchscript" and meta["versions"] == ["v2"]
    gmeta = grpcclient.InferenceServerClient(cancer.grpc_url).get_model_metadata("cancer", as_json=True)
    assert gmeta["inputs"][0]["name"] == "features" and gmeta["inputs"][0]["shape"] == ["-1", "30"]
    assert gmeta["platform"] == "pytorch_torchscript" and gmeta["versions"] == ["v2"]


@pytest.mark.parametrize("binary", [True, False])
def test_http_outputs_equal_the_in_process_model(cancer, cancer_rows, binary):
    x = cancer_rows[:20]
    got = http_infer(cancer.http_url, "cancer", x, "features", binary=binary)
    np.testing.assert_allclose(got, reference(CANCER, x), rtol=1e-5, atol=1e-6)


def test_grpc_outputs_equal_the_in_process_model(cancer, cancer_rows):
    x = cancer_rows[20:45]
    got = grpc_infer(cancer.grpc_url, "cancer", x, "features", "probabilities")
    np.testing.assert_allclose(got, reference(CANCER, x), rtol=1e-5, atol=1e-6)


def test_many_concurrent_clients_each_get_exactly_their_own_rows(cancer, cancer_rows):
    expected = reference(CANCER, cancer_rows)

    def one(i):
        rows = cancer_rows[i % len(cancer_rows): i % len(cancer_rows) + 1 + i % 3]
        start = i % len(cancer_rows)
        if i % 2:
            got = grpc_infer(cancer.grpc_url, "cancer", rows, "features", "probabilities")
        else:
            got = http_infer(cancer.http_url, "cancer", rows, "features")
        np.testing.assert_allclose(got, expected[start:start + len(rows)], rtol=1e-5, atol=1e-6)
        return len(rows)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        assert sum(pool.map(one, range(400))) > 400
    batches = metric(cancer.metrics(), "predictor_batch_size_count", model="cancer", version="v2")
    rows = metric(cancer.metrics(), "predictor_batch_size_sum", model="cancer", version="v2")
    assert rows > batches  # some requests did share a forward pass


def post(url: str, body: bytes, headers=None):
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/v2/models/cancer/infer", body, {"content-type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def tensor(**overrides):
    t = {"name": "features", "datatype": "FP32", "shape": [1, 30], "data": [1.0] * 30}
    t.update(overrides)
    return json.dumps({"inputs": [t]}).encode()


@pytest.mark.parametrize("body, status, words", [
    (tensor(name="feature"), 400, "unknown input ['feature']"),
    (tensor(datatype="INT32"), 400, "datatype INT32 does not match the model's FP32"),
    (tensor(shape=[1, 31]), 400, "shape [1, 31] does not match"),
    (tensor(data=[1.0] * 29), 400, "29 values, but shape [1, 30] needs 30"),
    (tensor(data=["NaN"] + [1.0] * 29), 400, "NaN or infinity"),
    (b'{"inputs": [{"name": ', 400, "not a V2 inference request: JSON decode error at character 21"),
    (b'{"outputs": []}', 400, "not a V2 inference request: inputs: Field required"),
    (b"x" * (17 * 1024 * 1024), 413, "exceeds the limit"),
])
def test_bad_input_gets_a_4xx_that_names_it_and_the_server_keeps_serving(cancer, cancer_rows, body, status, words):
    got_status, text = post(cancer.http_url, body)
    assert got_status == status and words in json.loads(text)["error"]      # one shape for every error
    assert http_infer(cancer.http_url, "cancer", cancer_rows[:1], "features").shape == (1, 2)


def test_bad_input_over_grpc_is_invalid_argument(cancer, cancer_rows):
    client = grpcclient.InferenceServerClient(cancer.grpc_url)
    inp = grpcclient.InferInput("features", [1, 29], "FP32")
    inp.set_data_from_numpy(np.ones((1, 29), np.float32))
    with pytest.raises(InferenceServerException) as err:
        client.infer("cancer", [inp])
    assert err.value.status() == "StatusCode.INVALID_ARGUMENT" and "does not match" in err.value.message()
    assert grpc_infer(cancer.grpc_url, "cancer", cancer_rows[:2], "features", "probabilities").shape == (2, 2)


def test_a_chunked_body_over_the_limit_is_413(cancer):
    host, port = cancer.http_url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    chunks = (b"x" * (1024 * 1024) for _ in range(17))                    # 17 MiB, no Content-Length
    conn.request("POST", "/v2/models/cancer/infer", chunks, {"content-type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and "exceeds the limit" in json.loads(resp.read())["error"]


def binary_body(rows: np.ndarray, size: int | None = None, tail: bytes = b"") -> tuple[bytes, dict]:
    """A binary-extension request whose input declares `size` bytes (its real size by default)."""
    raw = rows.tobytes() + tail
    header = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": list(rows.shape),
                                     "parameters": {"binary_data_size": len(rows.tobytes()) if size is None else size}}]}).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header)), "content-type": "application/octet-stream"}


@pytest.mark.parametrize("size, tail, words", [
    (4 * 30 * 2 + 8, b"", "binary_data_size 248 runs past the end of the body (240 binary bytes left)"),
    (4 * 30, b"", "the body has 240 bytes after its JSON header, but the inputs' binary_data_size add up to 120"),
    (None, b"\0" * 4, "the body has 244 bytes after its JSON header, but the inputs' binary_data_size add up to 240"),
    (-1, b"", "binary_data_size must be a non-negative integer"),
])
def test_a_wrong_binary_data_size_is_400_and_names_it(cancer, cancer_rows, size, tail, words):
    lean_only(cancer)
    body, headers = binary_body(cancer_rows[:2], size, tail)
    status, text = post(cancer.http_url, body, headers)
    assert status == 400 and words in json.loads(text)["error"]
    status, text = post(cancer.http_url, *binary_body(cancer_rows[:2]))
    assert status == 200


class HalfFirstTwo(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2] * 2


def test_fp16_travels_as_json_both_ways(tmp_path):
    """KServe refuses FP16 in JSON (its to_rest and from_bytes); the V2 protocol allows it."""
    (tmp_path / "m").mkdir()
    torch.jit.script(HalfFirstTwo()).save(str(tmp_path / "m" / "model.pt"))
    (tmp_path / "m" / "config.yaml").write_text(json.dumps({
        "name": "half", "version": "v1", "inputs": [{"name": "x", "datatype": "FP16", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP16", "shape": [-1, 2]}]}))
    x = np.array([[0.5, 1.25, 3, 4], [-2, 0.125, 0, 1]], np.float16)
    with PredictorProcess(tmp_path / "m", log_path=tmp_path / "p.log") as p:
        client = httpclient.InferenceServerClient(p.http_url)
        inp = httpclient.InferInput("x", [2, 4], "FP16")
        inp.set_data_from_numpy(x, binary_data=False)
        result = client.infer("half", [inp], outputs=[httpclient.InferRequestedOutput("y", binary_data=False)])
        assert result.get_output("y")["data"] == [1.0, 2.5, -4.0, 0.25]
        assert result.as_numpy("y").dtype == np.float16


def grpc_with_timeout_parameter(url: str, rows: np.ndarray, **choice):
    """A raw ModelInfer with parameters["timeout"] set to one field of InferParameter (tritonclient
    itself only sends an int64, from its `timeout` argument)."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc
    request = service_pb2.ModelInferRequest(model_name="cancer", raw_input_contents=[rows.tobytes()])
    request.inputs.add(name="features", datatype="FP32", shape=list(rows.shape))
    for field, value in choice.items():
        setattr(request.parameters["timeout"], field, value)
    with grpc.insecure_channel(url) as channel:
        return service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)


def test_the_grpc_timeout_parameter_is_an_integer_of_microseconds(cancer, cancer_rows):
    inp = grpcclient.InferInput("features", [1, 30], "FP32")
    inp.set_data_from_numpy(cancer_rows[:1])
    client = grpcclient.InferenceServerClient(cancer.grpc_url)
    assert client.infer("cancer", [inp], timeout=10_000_000).as_numpy("probabilities").shape == (1, 2)
    assert grpc_with_timeout_parameter(cancer.grpc_url, cancer_rows[:1], int64_param=10_000_000).raw_output_contents


@pytest.mark.parametrize("choice", [{"string_param": "10000000"}, {"double_param": 2.5}, {"bool_param": True},
                                    {"int64_param": -5}, {"uint64_param": 10_000_000}])
def test_a_grpc_timeout_parameter_of_any_other_type_is_invalid_argument(cancer, cancer_rows, choice):
    import grpc
    with pytest.raises(grpc.RpcError) as err:
        grpc_with_timeout_parameter(cancer.grpc_url, cancer_rows[:1], **choice)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "parameter 'timeout' must be a positive integer of microseconds (int64)" in err.value.details()


@pytest.mark.parametrize("binary_default, binary_output", [(True, False), (False, True)])
def test_each_output_comes_back_binary_or_json_as_requested(cancer, cancer_rows, binary_default, binary_output):
    """The request's binary_data_output is the default; an output's own binary_data wins (V2
    binary-data extension). Raw HTTP: tritonclient does not let a caller set both."""
    x = cancer_rows[:2]
    body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 30], "data": x.ravel().tolist()}],
                       "parameters": {"binary_data_output": binary_default},
                       "outputs": [{"name": "probabilities", "parameters": {"binary_data": binary_output}}]}).encode()
    host, port = cancer.http_url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/v2/models/cancer/infer", body, {"content-type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    header_length = resp.getheader("Inference-Header-Content-Length")
    header = json.loads(raw[:int(header_length)] if header_length else raw)
    out = header["outputs"][0]
    if binary_output:
        got = np.frombuffer(raw[int(header_length):], np.float32).reshape(2, 2)
        assert "data" not in out and out["parameters"]["binary_data_size"] == 16
    else:
        got = np.array(out["data"], np.float32).reshape(2, 2)
        assert header_length is None
    np.testing.assert_allclose(got, reference(CANCER, x), rtol=1e-5, atol=1e-6)
    assert header["model_name"] == "cancer"


def test_metrics_show_the_documented_series_moving(cancer, cancer_rows):
    before = cancer.metrics()
    http_infer(cancer.http_url, "cancer", cancer_rows[:3], "features")
    post(cancer.http_url, tensor(shape=[1, 7]))
    after = cancer.metrics()
    labels = {"model": "cancer", "version": "v2"}
    for name in ("predictor_batch_size_count", "predictor_queue_delay_seconds_count",
                 "predictor_inference_duration_seconds_count", "predictor_request_duration_seconds_count"):
        assert metric(after, name, **labels) > metric(before, name, **labels), name
    for code in ("200", "400"):
        assert (metric(after, "predictor_requests_total", code=code, protocol="rest", **labels)
                > metric(before, "predictor_requests_total", code=code, protocol="rest", **labels))
    assert "predictor_queue_depth" in after


def weather_windows(n: int, rows: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((rows, 60, 4)) * 5 + 10).astype(np.float32) for _ in range(n)]


def test_a_full_queue_answers_429_and_resource_exhausted_at_once(tmp_path):
    with PredictorProcess(WEATHER, "--max_queue_size", "64", "--max_batch_size", "64",
                          log_path=tmp_path / "p.log") as p:
        def call(x, client, url):
            inp = client.InferInput("window", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            try:
                client.InferenceServerClient(url).infer("weather", [inp])
                return "ok"
            except InferenceServerException as e:
                return e.status()

        windows = weather_windows(48, 48)
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            results = list(pool.map(lambda ix: call(ix[1], *((httpclient, p.http_url) if ix[0] % 2 else (grpcclient, p.grpc_url))),
                                    enumerate(windows)))
        assert "ok" in results
        assert "429" in results and "StatusCode.RESOURCE_EXHAUSTED" in results, results
        assert set(results) <= {"ok", "429", "StatusCode.RESOURCE_EXHAUSTED"}


def test_sigterm_under_load_loses_no_accepted_request(tmp_path):
    # a second of shutdown delay, as a pod has (default 5 s): requests still on their way when
    # SIGTERM lands are accepted; with none, gRPC's stop can cancel one still arriving (seen once)
    p = PredictorProcess(WEATHER, log_path=tmp_path / "p.log", env={"SHUTDOWN_DELAY": "1"}).start()
    try:
        windows = weather_windows(30, 64)  # 1920 rows: within the 2048-row queue
        expected = [reference(WEATHER, w) for w in windows]
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            futures = [pool.submit(http_infer if i % 2 else grpc_infer, *(
                (p.http_url, "weather", w, "window") if i % 2 else
                (p.grpc_url, "weather", w, "window", "next_day_temperature"))) for i, w in enumerate(windows)]
            deadline = time.monotonic() + 30
            while metric(p.metrics(), "predictor_queue_depth", model="weather") < 64 * 8:
                assert time.monotonic() < deadline, "the requests never queued up"
            p.proc.send_signal(15)
            results = [f.result(timeout=60) for f in futures]  # every in-flight request is answered
        for got, want in zip(results, expected):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        assert p.proc.wait(60) == 0
        with pytest.raises(Exception):
            httpclient.InferenceServerClient(p.http_url).is_server_live()
    finally:
        p.terminate()


def test_client_deadlines_count_as_cancelled_499_not_as_server_errors(tmp_path, cancer_rows):
    """gRPC deadlines that expire while a request waits are the client's doing: the operator's
    error rate (5xx) must not see them (predictor-review 26)."""
    slow = ROOT / "tests" / "fixtures" / "models" / "cancer" / "v3-slow"
    with PredictorProcess(slow, "--max_batch_size", "1", log_path=tmp_path / "p.log") as p:
        def call(i):
            inp = grpcclient.InferInput("features", [1, cancer_rows.shape[1]], "FP32")
            inp.set_data_from_numpy(cancer_rows[i:i + 1])
            try:
                grpcclient.InferenceServerClient(p.grpc_url).infer("cancer", [inp], client_timeout=0.06)
                return "ok"
            except InferenceServerException as e:
                return e.status()

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            results = list(pool.map(call, range(64)))
        assert "StatusCode.DEADLINE_EXCEEDED" in results, results
        labels = {"model": "cancer", "version": "v3-slow", "protocol": "grpc"}
        text = wait_for_metric(p, lambda t: metric(t, "predictor_requests_total", code="499", **labels) > 0)
        assert metric(text, "predictor_requests_total", code="499", **labels) > 0
        assert metric(text, "predictor_requests_total", code="500", **labels) == 0


def wait_for_metric(p, check, timeout=10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = p.metrics()
        if check(text) or time.monotonic() > deadline:
            return text
        time.sleep(0.2)
