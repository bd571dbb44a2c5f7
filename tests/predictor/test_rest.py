"""The lean REST path's parsing and encoding (the server behind it: tests/integration)."""
import json

import numpy as np
import pytest
from predictor.errors import InvalidInput

from predictor.codec import decode_request
from predictor.config import parse_model_config
from predictor.rest import encode_reply, parse_request
from predictor.v2 import Output

CONFIG = parse_model_config({
    "name": "m", "version": "v1",
    "inputs": [{"name": "a", "datatype": "FP32", "shape": [-1, 2]}, {"name": "b", "datatype": "INT64", "shape": [-1]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]})


def binary(a: np.ndarray, b: np.ndarray, sizes=None) -> tuple[bytes, int]:
    sizes = sizes or (a.nbytes, b.nbytes)
    header = json.dumps({"inputs": [
        {"name": "a", "datatype": "FP32", "shape": list(a.shape), "parameters": {"binary_data_size": sizes[0]}},
        {"name": "b", "datatype": "INT64", "shape": list(b.shape), "parameters": {"binary_data_size": sizes[1]}}]}).encode()
    return header + a.tobytes() + b.tobytes(), len(header)


def test_binary_inputs_become_arrays_over_the_body_itself_with_no_python_values():
    a, b = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([7, 8, 9])
    body, length = binary(a, b)
    arrays = decode_request(parse_request(body, length), CONFIG)
    np.testing.assert_array_equal(arrays[0], a)
    np.testing.assert_array_equal(arrays[1], b)
    assert all(np.shares_memory(x, np.frombuffer(body, np.uint8)) for x in arrays)


def test_json_and_binary_inputs_mix_and_the_request_options_are_read():
    b = np.array([5, 6])
    header = json.dumps({"id": "r1", "parameters": {"binary_data_output": True, "timeout": 5},
                         "outputs": [{"name": "y", "parameters": {"binary_data": False}}],
                         "inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
                                    {"name": "b", "datatype": "INT64", "shape": [2],
                                     "parameters": {"binary_data_size": 16}}]}).encode()
    request = parse_request(header + b.tobytes(), len(header))
    assert request.id == "r1" and request.parameters["timeout"] == 5 and request.binary_output
    assert request.outputs == {"y": False} and not request.binary("y")
    assert [x.tolist() for x in decode_request(request, CONFIG)] == [[[1, 2], [3, 4]], [5, 6]]


@pytest.mark.parametrize("body, length, words", [
    (b"[1, 2]", None, "body: should be an object"),
    (b'{"inputs": {}}', None, "inputs: should be a list"),
    (b'{"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}', None, "inputs.0.name: Field required"),
    (b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": 1, "data": [1]}]}', None, "inputs.0.shape: should be a list"),
    (b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1]}]}', None, "input 'a': no data"),
    (b'{"inputs": [], "outputs": [{"parameters": {}}]}', None, "outputs.0.name: Field required"),
    (b'{"inputs": []}', 99, "Inference-Header-Content-Length 99 is outside the 14-byte body"),
    (b'{"inputs": [], "parameters": [1]}', None, "parameters: should be an object"),
])
def test_a_body_that_is_not_a_v2_request_is_refused_naming_the_field(body, length, words):
    with pytest.raises(InvalidInput, match=words.replace("[", r"\[").replace("(", r"\(")):
        parse_request(body, length)


def test_a_binary_input_beside_data_is_refused():
    body = b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 2], "data": [1, 2], "parameters": {"binary_data_size": 8}}]}'
    with pytest.raises(InvalidInput, match="given instead of data, not beside it"):
        parse_request(body + b"\0" * 8, len(body))


def test_the_reply_is_json_or_a_json_header_and_the_binary_outputs_after_it():
    request = parse_request(b'{"id": "x", "inputs": [], "parameters": {"binary_data_output": true}}', None)
    y, z = np.array([[1.5, 2]], np.float32), np.array([3, 4], np.int64)
    body, length = encode_reply(request, [Output("y", "FP32", y, False), Output("z", "INT64", z, True)], "m", "v1")
    header = json.loads(body[:length])
    assert header == {"model_name": "m", "model_version": "v1", "id": "x", "outputs": [
        {"name": "y", "datatype": "FP32", "shape": [1, 2], "data": [1.5, 2.0]},
        {"name": "z", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}}]}
    assert np.frombuffer(body[length:], np.int64).tolist() == [3, 4]
    only_json, no_length = encode_reply(request, [Output("y", "FP32", y, False)], "m", "v1")
    assert no_length is None and json.loads(only_json)["outputs"][0]["data"] == [1.5, 2.0]
