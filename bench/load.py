"""Closed-loop load for the benchmark, each generator pinned to the load core: wrk for REST
(JSON bodies, as most clients send), bench/grpc_load.py for gRPC (raw_input_contents)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
LOAD_CPU = 1


def rest(url: str, model: str, name: str, shape: list[int], concurrency: int, seconds: float) -> dict:
    row = np.random.default_rng(0).standard_normal(shape).round(3)
    body = {"inputs": [{"name": name, "datatype": "FP32", "shape": shape, "data": row.ravel().tolist()}]}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(json.dumps(body))}\n")
    out = subprocess.run(["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
                          "--latency", "-s", f.name, f"http://{url}/v2/models/{model}/infer"],
                         capture_output=True, text=True, check=True).stdout
    Path(f.name).unlink()

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50"), "p99_ms": ms("99"), "errors": int(errors.group(1)) if errors else 0}


def grpc(url: str, model: str, name: str, shape: list[int], concurrency: int, seconds: float) -> dict:
    out = subprocess.run(["taskset", "-c", str(LOAD_CPU), sys.executable, str(BENCH / "grpc_load.py"),
                          "--url", url, "--model", model, "--input", name, "--shape", ",".join(map(str, shape)),
                          "--concurrency", str(concurrency), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])
