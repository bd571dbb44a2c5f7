"""The weather model's batched server on one core and on two: `python bench/weather_cores.py [--seconds 4]`.

The issue's weather goal (0.8 of the raw forward at the max batch size) cannot be met on one
core: the protocol's own cost shares it with the forward pass (bench/run.py's one-core limit).
With a second core the forward pass (on the batcher's inference thread, which torch runs
without the GIL) can overlap the event loop's protocol work. This machine has two cores, so the
load generator (wrk, CPU 1) shares the second one with the server: the two-core point here is a
lower bound of what two cores of its own would give the server.

Per point, the median of `repeat` runs: req/s at concurrency 128 (REST, single rows), its ratio
to the raw forward at batch 64 measured in the same run, the mean batch, and the CPU each of the
server's two busy threads (event loop, inference) used, with the machine's idle share.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import load, run, servers  # noqa: E402
from harness.processes import PredictorProcess, cpu_seconds, metric  # noqa: E402

CONCURRENCY = 128


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds by thread id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = cpu_seconds(pid, int(tid))
        except FileNotFoundError:                   # the thread ended meanwhile
            continue
    return out


def idle_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of the whole machine."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def batch_metric(server: PredictorProcess) -> tuple[float, float]:
    """(rows, batches) the server has run so far."""
    text = server.metrics()
    return metric(text, "predictor_batch_size_sum"), metric(text, "predictor_batch_size_count")


def point(model: servers.BenchModel, cpus: str, seconds: float, repeat: int) -> dict:
    runs = []
    with PredictorProcess(model.dir, "--batching", "true", cpu=cpus, log_path=Path(f"/tmp/weather-cores-{cpus}.log")) as s:
        for _ in range(repeat):
            cpu0, idle0, batches0, wall0 = thread_cpu(s.proc.pid), idle_ticks(), batch_metric(s), time.monotonic()
            r = load.rest(s.http_url, model.name, model.input, model.row_shape, CONCURRENCY, seconds)
            cpu1, idle1, batches1, wall = thread_cpu(s.proc.pid), idle_ticks(), batch_metric(s), time.monotonic() - wall0
            used = sorted(((cpu1[t] - cpu0.get(t, 0.0)) / wall for t in cpu1), reverse=True)[:2]
            rows, count = batches1[0] - batches0[0], batches1[1] - batches0[1]
            runs.append({**r, "threads_cores": [round(u, 2) for u in used], "mean_batch": rows / max(count, 1),
                         "machine_idle": (idle1[0] - idle0[0]) / max(idle1[1] - idle0[1], 1)})
    return run.median_of(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()
    model = servers.bench_model(run.WEATHER)
    raw = run.raw_forward(model, a.seconds)["rows_per_s"]
    print(f"raw forward, one torch thread on CPU {servers.SERVER_CPU}: {raw:.0f} rows/s at batch {model.max_batch_size}")
    for cpus in (str(servers.SERVER_CPU), f"{servers.SERVER_CPU},{load.LOAD_CPU}"):
        p = point(model, cpus, a.seconds, a.repeat)
        print(f"server on CPU {cpus:<4} {p['rps']:7.0f} req/s = {p['rps'] / raw:.2f} of raw   p99 {p['p99_ms']:.0f} ms   "
              f"mean batch {p['mean_batch']:.1f}   busiest threads {p['threads_cores']} cores   machine idle "
              f"{100 * p['machine_idle']:.0f}%   runs {p['runs_rps']}")


if __name__ == "__main__":
    main()
