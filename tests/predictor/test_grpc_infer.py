"""The gRPC path's message conversions (the server behind it: tests/integration)."""
import numpy as np
import pytest
from predictor.errors import InvalidInput
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from predictor.codec import decode_request
from predictor.config import parse_model_config
from predictor.grpc_infer import reply_to_grpc, request_from_grpc
from predictor.model import _timeout_seconds
from predictor.v2 import Output, Request

CONFIG = parse_model_config({
    "name": "m", "version": "v1",
    "inputs": [{"name": "a", "datatype": "FP32", "shape": [-1, 2]}, {"name": "b", "datatype": "INT64", "shape": [-1]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]})
Tensor = pb.ModelInferRequest.InferInputTensor


def test_raw_contents_are_read_in_place_and_parameters_kept():
    a, b = np.arange(4, dtype=np.float32).reshape(2, 2), np.array([1, 2])
    message = pb.ModelInferRequest(model_name="m", id="q", inputs=[
        Tensor(name="a", datatype="FP32", shape=[2, 2]), Tensor(name="b", datatype="INT64", shape=[2])],
        raw_input_contents=[a.tobytes(), b.tobytes()])
    message.parameters["timeout"].int64_param = 2_000_000
    request = request_from_grpc(message)
    arrays = decode_request(request, CONFIG)
    np.testing.assert_array_equal(arrays[0], a)
    assert arrays[1].tolist() == [1, 2] and request.id == "q" and _timeout_seconds(request.parameters) == 2.0


def test_typed_contents_are_read_by_datatype():
    message = pb.ModelInferRequest(model_name="m", inputs=[
        Tensor(name="a", datatype="FP32", shape=[1, 2], contents=pb.InferTensorContents(fp32_contents=[1.5, 2])),
        Tensor(name="b", datatype="INT64", shape=[1], contents=pb.InferTensorContents(int64_contents=[9]))])
    assert [x.tolist() for x in decode_request(request_from_grpc(message), CONFIG)] == [[[1.5, 2.0]], [9]]


def test_raw_and_typed_contents_mixed_are_refused_as_kserve_does():
    message = pb.ModelInferRequest(model_name="m", inputs=[
        Tensor(name="a", datatype="FP32", shape=[1, 2], contents=pb.InferTensorContents(fp32_contents=[1, 2])),
        Tensor(name="b", datatype="INT64", shape=[1])], raw_input_contents=[b"", b""])
    with pytest.raises(InvalidInput, match="contents field must not be specified"):
        request_from_grpc(message)


def test_the_reply_carries_every_output_raw():
    y = np.array([[1, 2]], np.float32)
    reply = reply_to_grpc(Request([], id="q"), [Output("y", "FP32", y, False)], "m", "v1")
    assert (reply.model_name, reply.model_version, reply.id) == ("m", "v1", "q")
    assert list(reply.outputs[0].shape) == [1, 2] and reply.outputs[0].datatype == "FP32"
    assert np.frombuffer(reply.raw_output_contents[0], np.float32).tolist() == [1, 2]
