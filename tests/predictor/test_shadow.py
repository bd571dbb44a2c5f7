"""The shadow comparison's pure part: the mirror's config, the mirrored body, the pairing."""
import numpy as np
import orjson
import pytest

from predictor.config import TensorSpec
from predictor.predictions import parse_predictions
from predictor.shadow import MirrorConfig, ShadowError, answer_arrays, compare, parse_mirror, request_body

CLASSES = TensorSpec("probabilities", "FP32", (-1, 2), parse_predictions({"kind": "class"}, "p", (2,)))
BINNED = TensorSpec("score", "FP32", (-1,), parse_predictions({"kind": "value", "bounds": [0.5, 1.0]}, "s", ()))
PLAIN = TensorSpec("raw", "FP64", (-1,))


def test_an_empty_file_turns_the_mirror_off():
    assert parse_mirror("", "shadow.yaml") is None
    assert parse_mirror("  \n", "shadow.yaml") is None


def test_a_full_config_is_read_with_its_defaults():
    m = parse_mirror("url: http://c.models.svc/\nfraction: 0.25\nsourceVersion: v1\n", "shadow.yaml")
    assert m == MirrorConfig("http://c.models.svc/", 0.25, source_version="v1", timeout=2.0)
    assert m.infer_url("cancer") == "http://c.models.svc/v2/models/cancer/infer"
    assert MirrorConfig("http://c", 0.1, model="other").infer_url("cancer") == "http://c/v2/models/other/infer"
    assert m.mirrors("v1") and not m.mirrors("v2")
    assert not MirrorConfig("http://c", 0.0).mirrors("v1")


@pytest.mark.parametrize("text, names", [
    ("url: [", "not YAML"),
    ("- a", "expected a mapping"),
    ("url: http://c\nfraction: 0.1\nfractoin: 1", "unknown field(s) ['fractoin']"),
    ("url: c.svc\nfraction: 0.1", "shadow.yaml.url"),
    ("url: http://c\nfraction: 1.5", "shadow.yaml.fraction"),
    ("url: http://c\nfraction: true", "shadow.yaml.fraction"),
    ("url: http://c", "shadow.yaml.fraction"),
    ("url: http://c\nfraction: 0.1\ntimeout: 0", "shadow.yaml.timeout"),
    ("url: http://c\nfraction: 0.1\nhost: ''", "shadow.yaml.host"),
    ("url: http://c\nfraction: 0.1\nmodel: 3", "shadow.yaml.model"),
])
def test_bad_config_names_the_field(text, names):
    with pytest.raises(ShadowError) as err:
        parse_mirror(text, "shadow.yaml")
    assert names in str(err.value)


def test_the_mirrored_body_carries_the_inputs_exactly():
    x = np.array([[0.1, 1e-7], [3.5, -2.25]], dtype=np.float32)
    body = orjson.loads(request_body([x], [TensorSpec("features", "FP32", (-1, 2))]))
    (only,) = body["inputs"]
    assert only["name"] == "features" and only["shape"] == [2, 2]
    assert np.array_equal(np.asarray(only["data"], dtype=np.float32).reshape(2, 2), x)


def test_an_answer_is_read_by_output_name():
    body = orjson.dumps({"outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.2, 0.8]}]})
    got = answer_arrays(body, [CLASSES])
    assert got["probabilities"].shape == (1, 2) and got["probabilities"].dtype == np.float32


@pytest.mark.parametrize("body, names", [
    (b"<html>", "not a V2 JSON response"),
    (b'{"outputs": [{"name": "other", "shape": [1], "data": [1]}]}', "no output 'probabilities'"),
    (b'{"outputs": [{"name": "probabilities", "shape": [1, 2], "data": [1]}]}', "not FP32 of its shape"),
])
def test_a_bad_answer_says_what_is_wrong(body, names):
    with pytest.raises(ShadowError) as err:
        answer_arrays(body, [CLASSES])
    assert names in str(err.value)


def test_classes_are_paired_by_their_argmax():
    own = {"probabilities": np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])}
    theirs = {"probabilities": np.array([[0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])}
    (p,) = compare(own, theirs, [CLASSES])
    assert (p.output, p.pairs, p.disagreements, p.difference_sum) == ("probabilities", 3, 1, None)


def test_values_are_paired_by_bin_and_by_difference():
    own = {"score": np.array([0.2, 0.7, 2.0, np.nan]), "raw": np.array([1.0, 2.0])}
    theirs = {"score": np.array([0.4, 1.2, 3.0, np.nan]), "raw": np.array([1.5, 1.0])}
    binned, plain = compare(own, theirs, [BINNED, PLAIN])
    assert binned.pairs == 4 and binned.disagreements == 1          # 0.7 -> 1.2 crosses the bound 1.0
    assert binned.difference_sum == pytest.approx(0.2 + 0.5 + 1.0)  # the NaN pair adds no difference
    assert binned.difference_squares == pytest.approx(0.04 + 0.25 + 1.0)
    assert plain.disagreements is None and plain.difference_sum == pytest.approx(-0.5)
    assert plain.difference_squares == pytest.approx(1.25)


def test_a_nan_against_a_number_is_a_disagreement():
    (p,) = compare({"score": np.array([np.nan])}, {"score": np.array([0.1])}, [BINNED])
    assert p.disagreements == 1 and p.difference_sum == 0.0


def test_shapes_that_differ_are_refused():
    with pytest.raises(ShadowError, match="answered shape \\[1, 2\\], this version \\[2, 2\\]"):
        compare({"probabilities": np.zeros((2, 2))}, {"probabilities": np.zeros((1, 2))}, [CLASSES])
