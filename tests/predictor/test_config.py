from pathlib import Path

import pytest

from predictor.config import ConfigError, load_model_config, parse_model_config

ROOT = Path(__file__).resolve().parents[2]
BASE = {"name": "m", "version": "v1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 1]}]}


@pytest.mark.parametrize("path", sorted(p.parent for p in (ROOT / "models").glob("*/*/config.yaml")))
def test_every_shipped_model_config_loads(path):
    config = load_model_config(path)
    assert config.version == path.name and config.name == path.parent.name


def test_batching_defaults_and_overrides():
    config = parse_model_config({**BASE, "batching": {"max_batch_size": 16, "max_queue_delay_ms": 5}})
    assert config.batching.max_batch_size == 16 and config.batching.max_queue_delay == 0.005
    assert config.with_batching(max_batch_size=8, enabled=None).batching.max_batch_size == 8


@pytest.mark.parametrize("change, message", [
    ({"inputs": [{"name": "x", "datatype": "FLOAT", "shape": [-1, 3]}]}, r"inputs\[0\].datatype"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [3]}]}, r"inputs\[0\].shape"),
    ({"outputs": []}, "at least one input and one output"),
    ({"batching": {"max_batch_size": 0}}, "max_batch_size must be >= 1"),
    ({"batching": {"max_batch_size": 8, "max_queue_size": 4}}, "max_queue_size"),
])
def test_bad_configs_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_model_config({**BASE, **change})


def test_missing_field_and_missing_file():
    with pytest.raises(ConfigError, match="missing required field 'version'"):
        parse_model_config({k: v for k, v in BASE.items() if k != "version"})
    with pytest.raises(ConfigError, match="no config.yaml"):
        load_model_config(ROOT)
