"""The predictor benchmark: `python bench/run.py [--seconds 5]`.

Measures, in one run, single-row requests at concurrency 1, 16 and 64 over REST (wrk) and
gRPC (bench/grpc_load.py), with the server pinned to CPU 0 (one torch thread) and the load
generator to CPU 1:
  raw        in-process torch forward of the weather model: rows/s at the max batch size,
             and the batch-1 forward time (the limit for compute)
  ceiling    the same server serving a no-op model with weather's signature (the limit for
             per-request overhead)
  unbatched  the weather model served with batching off (plain per-request predict)
  batched    the weather model served with dynamic batching
Prints a table and the ratios, and writes bench/results/latest.json. Nothing here asserts:
the numbers are the report.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from predictor.config import load_model_config  # noqa: E402
from predictor.testing import PredictorProcess  # noqa: E402

WEATHER = ROOT / "models" / "weather" / "v1"
NOOP = ROOT / "tests" / "fixtures" / "models" / "noop" / "v1"
CONCURRENCY = (1, 16, 64)
SERVER_CPU, LOAD_CPU = 0, 1


def raw_forward(seconds: float) -> dict:
    code = f"""
import json, time, numpy as np, torch
from predictor.config import load_model_config
from predictor.runtime import TorchRunner, load_module, set_torch_threads
set_torch_threads(1)
config = load_model_config({str(WEATHER)!r})
run = TorchRunner(load_module({str(WEATHER)!r}, config), config)
out = {{}}
for rows in (1, config.batching.max_batch_size):
    x = np.random.default_rng(0).standard_normal((rows, 60, 4)).astype(np.float32)
    for _ in range(3): run([x])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < {seconds / 2}:
        run([x]); n += 1
    out[rows] = (time.perf_counter() - start) / n
print(json.dumps({{"batch1_ms": out[1] * 1000, "max_batch": config.batching.max_batch_size,
                  "rows_per_s": config.batching.max_batch_size / out[config.batching.max_batch_size]}}))
"""
    done = subprocess.run(["taskset", "-c", str(SERVER_CPU), sys.executable, "-c", code],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def wrk(url: str, model: str, body: dict, concurrency: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(json.dumps(body))}\n")
    out = subprocess.run(["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
                          "--latency", "-s", f.name, f"http://{url}/v2/models/{model}/infer"],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50"), "p99_ms": ms("99"), "errors": int(errors.group(1)) if errors else 0}


def grpc_load(url: str, model: str, concurrency: int, seconds: float) -> dict:
    out = subprocess.run(["taskset", "-c", str(LOAD_CPU), sys.executable, str(ROOT / "bench" / "grpc_load.py"),
                          "--url", url, "--model", model, "--input", "window", "--shape", "1,60,4",
                          "--concurrency", str(concurrency), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def serve_and_load(model_dir: Path, args: list[str], seconds: float, logs: Path) -> dict:
    config = load_model_config(model_dir)
    row = np.random.default_rng(0).standard_normal((1, 60, 4)).round(3)
    body = {"inputs": [{"name": "window", "datatype": "FP32", "shape": [1, 60, 4], "data": row.ravel().tolist()}]}
    results = {}
    with PredictorProcess(model_dir, *args, cpu=SERVER_CPU, log_path=logs / f"{config.name}{'-'.join(args)}.log") as p:
        for c in CONCURRENCY:
            results[f"rest_c{c}"] = wrk(p.http_url, config.name, body, c, seconds)
            results[f"grpc_c{c}"] = grpc_load(p.grpc_url, config.name, c, seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    a = parser.parse_args()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.time()
    report = {"raw": raw_forward(a.seconds),
              "ceiling": serve_and_load(NOOP, [], a.seconds, logs),
              "unbatched": serve_and_load(WEATHER, ["--batching", "false"], a.seconds, logs),
              "batched": serve_and_load(WEATHER, [], a.seconds, logs)}
    raw = report["raw"]
    print(f"raw torch forward (1 thread): batch-1 {raw['batch1_ms']:.2f} ms, "
          f"batch-{raw['max_batch']} limit {raw['rows_per_s']:.0f} rows/s")
    print(f"{'run':<12}{'proto':<6}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for run in ("ceiling", "unbatched", "batched"):
        for key, r in report[run].items():
            proto, c = key.split("_c")
            print(f"{run:<12}{proto:<6}{c:>5}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}")
    ratios = {}
    for proto in ("rest", "grpc"):
        b, u, ceil = report["batched"], report["unbatched"], report["ceiling"]
        limit = min(raw["rows_per_s"], ceil[f"{proto}_c64"]["rps"])
        ratios[proto] = {
            "batched_vs_limit_c64": b[f"{proto}_c64"]["rps"] / limit,
            "binding_limit": "raw forward" if raw["rows_per_s"] <= ceil[f"{proto}_c64"]["rps"] else "protocol ceiling",
            "batched_vs_unbatched_rps_c64": b[f"{proto}_c64"]["rps"] / u[f"{proto}_c64"]["rps"],
            "batched_vs_unbatched_p50_c1": b[f"{proto}_c1"]["p50_ms"] / u[f"{proto}_c1"]["p50_ms"],
        }
        r = ratios[proto]
        print(f"{proto}: batched/min(limits) at c64 = {r['batched_vs_limit_c64']:.2f} (goal >= 0.8; binding: {r['binding_limit']}); "
              f"batched/unbatched req/s at c64 = {r['batched_vs_unbatched_rps_c64']:.2f}x (goal >= 3); "
              f"batched/unbatched p50 at c1 = {r['batched_vs_unbatched_p50_c1']:.2f} (goal <= 1.10)")
    report["ratios"] = ratios
    report["seconds_per_point"] = a.seconds
    report["wall_seconds"] = time.time() - started
    a.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
