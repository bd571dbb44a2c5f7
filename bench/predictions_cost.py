"""What counting predictions costs (issue 15): `python bench/predictions_cost.py [--requests 3000]`.

The same model served in process twice, with and without its config's `predictions`, each
taking the same single-row requests one after another through TorchModel.infer (decode, batcher,
forward, outputs, metrics): the ratio of their per-request times is the cost of leaving the
counting on, for a light classifier (cancer v2, one class output) and the heavy regressor
(weather v1, every element binned). Rounds alternate which goes first; best of each, same run.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from predictor import v2  # noqa: E402
from predictor.config import load_model_config  # noqa: E402
from predictor.metrics import PredictorMetrics  # noqa: E402
from predictor.model import TorchModel  # noqa: E402


def served(model_dir: Path, counting: bool) -> TorchModel:
    config = load_model_config(model_dir)
    if not counting:
        config = dataclasses.replace(config, outputs=tuple(dataclasses.replace(o, predictions=None) for o in config.outputs))
    model = TorchModel(model_dir, config, metrics=PredictorMetrics(CollectorRegistry()))
    model.load()
    return model


async def per_request(model: TorchModel, request: v2.Request, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await model.infer(request, "rest")
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name in ("cancer/v2", "weather/v1"):
        model_dir = ROOT / "models" / name
        spec = load_model_config(model_dir).inputs[0]
        row = np.random.default_rng(0).random((1, *spec.row_shape), dtype=np.float32) * 10
        request = v2.Request([v2.Tensor(spec.name, "FP32", list(row.shape), row.ravel().tolist())])
        models = {counting: served(model_dir, counting) for counting in (False, True)}
        best = {False: float("inf"), True: float("inf")}
        for r in range(args.rounds):
            for counting in ((False, True) if r % 2 else (True, False)):    # each goes first in half the rounds
                model = models[counting]
                best[counting] = min(best[counting], asyncio.run(per_request(model, request, args.requests)))
        extra = best[True] - best[False]
        print(f"{name}: {best[False] * 1e6:.1f} us per request without counting, {best[True] * 1e6:.1f} us with: "
              f"ratio {best[True] / best[False]:.3f} ({extra * 1e6:+.1f} us)")


if __name__ == "__main__":
    main()
