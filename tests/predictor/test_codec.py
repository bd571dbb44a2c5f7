import re

import numpy as np
import pytest
from predictor.errors import InvalidInput

from predictor.codec import decode_request, select_outputs
from predictor.config import parse_model_config
from predictor.v2 import Request, Tensor

CONFIG = parse_model_config({
    "name": "m", "version": "v1",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}, {"name": "ids", "datatype": "INT64", "shape": [-1]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}, {"name": "z", "datatype": "INT64", "shape": [-1]}],
})


def request(*inputs, outputs=None):
    return Request(list(inputs), outputs=outputs)


def x(shape=(2, 3), data=None, datatype="FP32", name="x"):
    n = int(np.prod(shape))
    return Tensor(name, datatype, list(shape), data if data is not None else list(range(n)))


def ids(rows=2, data=None):
    return Tensor("ids", "INT64", [rows], list(range(rows)) if data is None else data)


def test_decode_returns_arrays_in_model_order_with_the_right_dtype():
    arrays = decode_request(request(ids(), x()), CONFIG)
    assert arrays[0].dtype == np.float32 and arrays[0].shape == (2, 3)
    assert arrays[1].dtype == np.int64 and arrays[1].tolist() == [0, 1]


def test_decode_reads_raw_binary_data_without_a_copy():
    raw = bytearray(np.array([1, 2, 3], np.float32).tobytes())
    array = decode_request(request(Tensor("x", "FP32", [1, 3], raw=memoryview(raw)), ids(1)), CONFIG)[0]
    assert array.tolist() == [[1, 2, 3]]
    raw[:4] = np.array([9], np.float32).tobytes()
    assert array[0, 0] == 9                       # a view of the request's bytes


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
    with pytest.raises(InvalidInput, match="8 bytes of raw data, but shape .* needs 12"):
        decode_request(request(Tensor("x", "FP32", [1, 3], raw=b"\0" * 8), ids(1)), CONFIG)


def test_unknown_requested_output_is_rejected():
    with pytest.raises(InvalidInput, match="unknown requested output"):
        decode_request(request(x(), ids(), outputs={"nope": None}), CONFIG)


def test_select_returns_all_outputs_or_only_the_requested_ones_in_their_datatype():
    outs = [np.ones((2, 2), np.float64), np.array([7, 8], np.int32)]
    every = select_outputs(request(x(), ids()), CONFIG, outs)
    assert [(o.name, o.datatype, o.array.dtype) for o in every] == [("y", "FP32", np.float32), ("z", "INT64", np.int64)]
    only = select_outputs(request(x(), ids(), outputs={"z": None}), CONFIG, outs)
    assert [o.name for o in only] == ["z"] and only[0].array.tolist() == [7, 8]


@pytest.mark.parametrize("data, shown", [([0.5, 1], "0.5"), ([1, 2.7], "2.7"), ([1e20, 1], "1e+20"),
                                         ([-1e19, 1], "-1e+19"), ([2.0 ** 63, 1], "9.223372036854776e+18")])
def test_a_fraction_or_an_out_of_range_float_for_an_integer_input_is_refused_not_wrapped(data, shown):
    with pytest.raises(InvalidInput, match=re.escape(f"INT64 takes whole numbers within its range, got {shown}")):
        decode_request(request(x(), ids(data=data)), CONFIG)


def test_an_out_of_range_integer_is_refused():
    with pytest.raises(InvalidInput, match="not a list of INT64"):
        decode_request(request(x(), ids(data=[2 ** 64, 1])), CONFIG)


def test_whole_numbers_written_as_floats_are_accepted_for_an_integer_input():
    arrays = decode_request(request(x(), ids(data=[3.0, -4])), CONFIG)
    assert arrays[1].dtype == np.int64 and arrays[1].tolist() == [3, -4]


def test_each_output_is_binary_or_json_as_the_request_asks():
    outs = [np.ones((2, 2), np.float32), np.array([7, 8])]
    req = Request([x(), ids()], binary_output=True, outputs={"y": False, "z": None})
    y, z = select_outputs(req, CONFIG, outs)
    assert not y.binary                       # its own binary_data: false
    assert z.binary                           # the request's default: binary
