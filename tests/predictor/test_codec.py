import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from predictor.codec import decode_request, encode_response
from predictor.config import parse_model_config

CONFIG = parse_model_config({
    "name": "m", "version": "v1",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}, {"name": "ids", "datatype": "INT64", "shape": [-1]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}, {"name": "z", "datatype": "INT64", "shape": [-1]}],
})


def request(*inputs, outputs=None):
    return InferRequest(model_name="m", infer_inputs=list(inputs), request_outputs=outputs)


def x(shape=(2, 3), data=None, datatype="FP32", name="x"):
    n = int(np.prod(shape))
    return InferInput(name, list(shape), datatype, data if data is not None else list(range(n)))


def ids(rows=2):
    return InferInput("ids", [rows], "INT64", list(range(rows)))


def test_decode_returns_arrays_in_model_order_with_the_right_dtype():
    arrays = decode_request(request(ids(), x()), CONFIG)
    assert arrays[0].dtype == np.float32 and arrays[0].shape == (2, 3)
    assert arrays[1].dtype == np.int64 and arrays[1].tolist() == [0, 1]


def test_decode_accepts_raw_binary_data():
    inp = InferInput("x", [1, 3], "FP32")
    inp._raw_data = np.array([1, 2, 3], np.float32).tobytes()
    assert decode_request(request(inp, ids(1)), CONFIG)[0].tolist() == [[1, 2, 3]]


@pytest.mark.parametrize("inputs, message", [
    ([x(name="q"), ids()], r"unknown input \['q'\]"),
    ([x()], r"missing input \['ids'\]"),
    ([x(), x(), ids()], "given more than once"),
    ([x(datatype="FP64"), ids()], "datatype FP64 does not match the model's FP32"),
    ([x(shape=(2, 4)), ids()], r"shape \[2, 4\] does not match the model's \[-1, 3\]"),
    ([x(shape=(2, 3, 1)), ids()], "does not match"),
    ([x(shape=(0, 3)), ids()], "batch dimension is 0"),
    ([x(data=[1, 2]), ids()], "2 values, but shape"),
    ([x(data=["a"] * 6), ids()], "not a list of FP32"),
    ([x(data=[1, 2, float("nan"), 4, 5, 6]), ids()], "NaN or infinity .first at row 0"),
    ([x(data=[1, 2, 3, 4, 5, float("inf")]), ids()], "row 1"),
    ([x(), ids(3)], "disagree on the batch dimension"),
])
def test_bad_input_is_rejected_with_a_message_that_names_it(inputs, message):
    with pytest.raises(InvalidInput, match=message):
        decode_request(request(*inputs), CONFIG)


def test_raw_data_of_the_wrong_length_is_rejected():
    inp = InferInput("x", [1, 3], "FP32")
    inp._raw_data = b"\0" * 8
    with pytest.raises(InvalidInput, match="8 bytes of raw data, but shape .* needs 12"):
        decode_request(request(inp, ids(1)), CONFIG)


def test_unknown_requested_output_is_rejected():
    with pytest.raises(InvalidInput, match="unknown requested output"):
        decode_request(request(x(), ids(), outputs=[RequestedOutput("nope")]), CONFIG)


def test_encode_returns_all_outputs_or_only_the_requested_ones():
    req = request(x(), ids())
    outs = [np.ones((2, 2), np.float32), np.array([7, 8])]
    resp = encode_response(req, CONFIG, outs, "m")
    assert [o.name for o in resp.outputs] == ["y", "z"]
    assert resp.outputs[1].datatype == "INT64" and resp.outputs[1].as_numpy().tolist() == [7, 8]
    assert resp.model_version == "v1"
    only = encode_response(request(x(), ids(), outputs=[RequestedOutput("z")]), CONFIG, outs, "m")
    assert [o.name for o in only.outputs] == ["z"]


@pytest.mark.parametrize("data", [[0.5, 1], [1, 2.7]])
def test_a_fraction_for_an_integer_input_is_refused_not_truncated(data):
    with pytest.raises(InvalidInput, match="INT64 takes whole numbers, got (0.5|2.7)"):
        decode_request(request(x(), InferInput("ids", [2], "INT64", data)), CONFIG)


def test_whole_numbers_written_as_floats_are_accepted_for_an_integer_input():
    arrays = decode_request(request(x(), InferInput("ids", [2], "INT64", [3.0, 4])), CONFIG)
    assert arrays[1].dtype == np.int64 and arrays[1].tolist() == [3, 4]


def test_each_output_is_binary_or_json_as_the_request_asks_and_under_the_served_name():
    import json
    outs = [np.ones((2, 2), np.float32), np.array([7, 8])]
    req = InferRequest(model_name="served", infer_inputs=[x(), ids()], parameters={"binary_data_output": True},
                       request_outputs=[RequestedOutput("y", {"binary_data": False}), RequestedOutput("z")])
    body, json_length = encode_response(req, CONFIG, outs, "served").to_rest()
    header = json.loads(body[:json_length])
    assert header["model_name"] == "served"
    y, z = header["outputs"]
    assert y["data"] == [1.0, 1.0, 1.0, 1.0]                                  # its own binary_data: false
    assert "data" not in z and z["parameters"]["binary_data_size"] == 16      # the request's default: binary
    assert np.frombuffer(body[json_length:], np.int64).tolist() == [7, 8]
