"""Trains every shipped model version, reproducibly, from data that ships inside PyPI packages.

    python models/train.py            # writes models/ and tests/fixtures/models/

- cancer: a tabular classifier on scikit-learn's bundled breast-cancer data (30 features ->
  probabilities of [malignant, benign]); v1 (small), v2 (larger, trained longer) and v2-int8
  (v2 with torch's dynamic int8 quantization of its Linear layers).
- weather: a CNN+LSTM over 60-day windows of Seattle's daily weather (vega_datasets' bundled
  seattle-weather: precipitation, temp_max, temp_min, wind) -> the next day's temp_max and
  temp_min in degrees C; batch-1 forward is about 2 ms, so batching matters. The benchmark serves it.
- fixtures (tests/fixtures/models/): faulty candidates for the end-to-end tests, whose faults
  come from the model itself: cancer/v3-errors fails on about a tenth of the inputs,
  cancer/v3-slow does extra real work on every batch, cancer/v3-shifted is v2
  answering benign for most inputs (same speed, no errors, shifted predictions); noop/v1 has weather's signature and
  does nothing, to measure what the protocol alone allows.
Inputs are normalised inside each model, so clients send raw values.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
WEATHER_COLUMNS = ["precipitation", "temp_max", "temp_min", "wind"]
WINDOW = 60
# how each output's answers are counted (predictor/predictions.py): the drift gate compares them
PREDICTIONS = {"probabilities": {"kind": "class", "labels": ["malignant", "benign"]},
               "next_day_temperature": {"kind": "value", "bounds": [-10, -5, 0, 5, 10, 15, 20, 25, 30, 35]}}


class TabularClassifier(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor, hidden: int):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.net = nn.Sequential(nn.Linear(mean.numel(), hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net((features - self.mean) / self.std), dim=1)


class WeatherForecaster(nn.Module):
    """A convolution over the window, then a two-layer LSTM stepped one day at a time.

    The scripted per-step recurrence is how streaming and custom-cell models are written; its
    per-step dispatch cost is paid once per forward pass, so a batch of 64 costs little more
    than a batch of 1, which is what makes server-side batching worth measuring.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, hidden: int = 64):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.hidden = hidden
        self.conv = nn.Sequential(nn.Conv1d(4, 32, 5, padding=2), nn.ReLU())
        self.cell1 = nn.LSTMCell(32, hidden)
        self.cell2 = nn.LSTMCell(hidden, hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x = self.conv(((window - self.mean) / self.std).transpose(1, 2)).transpose(1, 2)  # [B, T, 32]
        h1 = torch.zeros(x.shape[0], self.hidden)
        c1, h2, c2 = torch.zeros_like(h1), torch.zeros_like(h1), torch.zeros_like(h1)
        for t in range(x.shape[1]):
            h1, c1 = self.cell1(x[:, t], (h1, c1))
            h2, c2 = self.cell2(h1, (h2, c2))
        return self.head(h2) * self.std[1:3] + self.mean[1:3]  # degrees C


class FailsOnShare(nn.Module):
    """Raises for any batch holding a row whose first feature has 7 as its second decimal."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        marker = torch.remainder(torch.floor(features[:, 0] * 100.0), 10.0)
        if bool((marker == 7.0).any()):
            raise RuntimeError("injected fault: this candidate fails on inputs whose first feature has 7 as second decimal")
        return self.inner(features)


class SlowDown(nn.Module):
    """Does `rounds` real matrix products before the inner model: a latency regression."""

    def __init__(self, inner: nn.Module, size: int = 256, rounds: int = 24):
        super().__init__()
        self.inner = inner
        self.rounds = rounds
        self.register_buffer("w", torch.randn(size, size, generator=torch.Generator().manual_seed(3)) / size ** 0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.w
        for _ in range(self.rounds):
            x = torch.tanh(x @ self.w)
        return self.inner(features) + 0.0 * x.sum()


class Shifted(nn.Module):
    """The inner classifier, answering `benign` for most inputs whatever they are (those whose
    first feature has a second decimal below 8): as fast, never failing, its answers shifted
    towards benign, as a broken preprocessing step would leave them."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.register_buffer("benign", torch.tensor([0.05, 0.95]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        marker = torch.remainder(torch.floor(features[:, 0] * 100.0), 10.0)
        return torch.where((marker < 8.0).unsqueeze(1), self.benign, self.inner(features))


class NoOp(nn.Module):
    def forward(self, window: torch.Tensor) -> torch.Tensor:
        return torch.zeros(window.shape[0], 2)


def _nll(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.nll_loss(torch.log(pred + 1e-9), y)


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch: int, loss_fn=_nll) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((model(x).argmax(1) == y).float().mean())


def _save(module: nn.Module, out: Path, config: dict, example: torch.Tensor) -> None:
    out.mkdir(parents=True, exist_ok=True)
    try:
        scripted = torch.jit.script(module)
    except Exception:  # quantized modules trace where they do not script
        scripted = torch.jit.trace(module, example)
    scripted.save(str(out / "model.pt"))
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"wrote {out.resolve().relative_to(ROOT)}: {config.get('description', '')}")


def _config(name: str, version: str, inp: tuple[str, list], out: tuple[str, list], description: str,
            max_batch_size: int = 64) -> dict:
    return {
        "name": name, "version": version, "description": description,
        "inputs": [{"name": inp[0], "datatype": "FP32", "shape": inp[1]}],
        "outputs": [{"name": out[0], "datatype": "FP32", "shape": out[1], "predictions": PREDICTIONS[out[0]]}],
        "batching": {"enabled": True, "max_batch_size": max_batch_size, "max_queue_delay_ms": 2,
                     "max_queue_size": 2048, "instances": 1},
    }


def cancer_data():
    from sklearn.datasets import load_breast_cancer
    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order])
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def weather_data():
    from vega_datasets import local_data
    df = local_data.seattle_weather()
    series = torch.tensor(df[WEATHER_COLUMNS].to_numpy(), dtype=torch.float32)
    xs = torch.stack([series[i:i + WINDOW] for i in range(len(series) - WINDOW)])
    ys = series[WINDOW:, 1:3]  # the next day's temp_max, temp_min
    cut = int(0.8 * len(xs))  # train on the past, test on the future
    return series, xs[:cut], ys[:cut], xs[cut:], ys[cut:]


def build_cancer(models: Path, fixtures: Path) -> None:
    xtr, ytr, xte, yte = cancer_data()
    mean, std = xtr.mean(0), xtr.std(0)
    sig = ("features", [-1, 30]), ("probabilities", [-1, 2])
    example = xte[:4]
    torch.manual_seed(1)
    v1 = TabularClassifier(mean, std, hidden=8)
    _fit(v1, xtr, ytr, epochs=5, lr=1e-3, batch=32)
    _save(v1, models / "cancer" / "v1", _config("cancer", "v1", *sig, f"MLP 30-8-4-2, test accuracy {_accuracy(v1, xte, yte):.3f}"), example)
    torch.manual_seed(2)
    v2 = TabularClassifier(mean, std, hidden=64)
    _fit(v2, xtr, ytr, epochs=60, lr=1e-3, batch=32)
    _save(v2, models / "cancer" / "v2", _config("cancer", "v2", *sig, f"MLP 30-64-32-2, test accuracy {_accuracy(v2, xte, yte):.3f}"), example)
    q = torch.ao.quantization.quantize_dynamic(v2, {nn.Linear}, dtype=torch.qint8)
    _save(q, models / "cancer" / "v2-int8", _config("cancer", "v2-int8", *sig, f"v2 with dynamic int8 Linear layers, test accuracy {_accuracy(q, xte, yte):.3f}"), example)
    _save(FailsOnShare(v2), fixtures / "cancer" / "v3-errors", _config("cancer", "v3-errors", *sig, "fixture: v2 that fails on about 10% of inputs"), example)
    _save(SlowDown(v2), fixtures / "cancer" / "v3-slow", _config("cancer", "v3-slow", *sig, "fixture: v2 plus about 12 ms of real work per batch"), example)
    build_shifted(v2, fixtures, example, xte, yte)


def write_cancer_holdout(models: Path) -> None:
    """The test rows and their labels as the operator's evaluation step reads them (a V2 request
    body with labels): `kubectl create configmap cancer-holdout --from-file=holdout.json=...`."""
    _, _, xte, yte = cancer_data()
    holdout = {"inputs": [{"name": "features", "datatype": "FP32", "shape": list(xte.shape),
                           "data": [round(float(v), 6) for v in xte.flatten()]}],
               "labels": [int(v) for v in yte]}
    (models / "cancer" / "holdout.json").write_text(json.dumps(holdout, separators=(",", ":")) + "\n")


def build_shifted(v2: nn.Module, fixtures: Path, example: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor) -> None:
    shifted = Shifted(v2).eval()
    sig = ("features", [-1, 30]), ("probabilities", [-1, 2])
    with torch.inference_mode():
        benign = float((shifted(xte).argmax(1) == 1).float().mean()), float((v2(xte).argmax(1) == 1).float().mean())
    _save(shifted, fixtures / "cancer" / "v3-shifted", _config(
        "cancer", "v3-shifted", *sig, f"fixture: v2 answering benign for most inputs ({benign[0]:.0%} benign on test rows, v2 {benign[1]:.0%}), "
        f"test accuracy {_accuracy(shifted, xte, yte):.3f}"), example)


def build_weather(models: Path, fixtures: Path) -> None:
    series, xtr, ytr, xte, yte = weather_data()
    sig = ("window", [-1, WINDOW, 4]), ("next_day_temperature", [-1, 2])
    torch.manual_seed(3)
    mean, std = series.mean(0), series.std(0)
    model = WeatherForecaster(mean, std)
    _fit(model, xtr, ytr, epochs=8, lr=2e-3, batch=32,
         loss_fn=lambda pred, y: nn.functional.mse_loss((pred - mean[1:3]) / std[1:3], (y - mean[1:3]) / std[1:3]))
    with torch.inference_mode():
        mae = float((model(xte) - yte).abs().mean())
    persistence = float((xte[:, -1, 1:3] - yte).abs().mean())  # tomorrow is like today
    _save(model, models / "weather" / "v1", _config("weather", "v1", *sig,
          f"CNN+LSTM over {WINDOW}-day windows, next-day temp MAE {mae:.2f} C (persistence {persistence:.2f} C)"), xte[:4])
    _save(NoOp(), fixtures / "noop" / "v1", _config("noop", "v1", *sig, "fixture: weather's signature, no work"), xte[:4])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--fixtures", type=Path, default=ROOT / "tests" / "fixtures" / "models")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    build_cancer(args.models, args.fixtures)
    write_cancer_holdout(args.models)
    build_weather(args.models, args.fixtures)


if __name__ == "__main__":
    main()
