"""The predictor benchmark: `python bench/run.py [--seconds 5] [--repeat 3]`.

Every server of a model runs at once; each of `repeat` rounds measures every point on each
server in turn (a different one first each round), and the median req/s is reported with every
run's: one point on this machine varies by 15-40% from the next, and drifts over minutes. One
run measures, with single-row requests at concurrency 1, 16 and 64 over REST (wrk, JSON
bodies) and gRPC (bench/grpc_load.py, raw contents), every server pinned to CPU 0 with one torch
thread and the load generator on CPU 1:
  raw         the in-process torch forward: rows/s at batch 1 and at the max batch size
  stock       stock KServe: a plain kserve.Model, no batching (bench/baselines/stock_kserve.py)
  mlserver    MLServer 1.7.1 with adaptive batching (bench/baselines/mlserver_runtime.py)
  unbatched   this predictor with batching off
  batched     this predictor with dynamic batching (the default)
on two models: the light MLP (64-512-512-10, where per-request overhead dominates) and the
heavy weather model (where the forward pass does), the heavy one also at concurrency 128 and
against `ceiling`, this predictor serving a no-op model with weather's signature: with the
protocol and the forward pass sharing one core, a request costs 1/raw + 1/ceiling seconds of
it, which is the one-core limit the batched server is compared with as well. It prints the table and the issue's ratios
against their goals, and writes bench/results/latest.json. Nothing here asserts: the numbers
are the report.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import load, servers  # noqa: E402
from harness.processes import cpu_seconds  # noqa: E402

CONCURRENCY = (1, 16, 64)
# The heavy model also at 128: 64 closed-loop clients and one forward pass at a time alternate
# batches of b and 64 - b rows (32 on average), so only more clients than max_batch_size keep
# its batches full, which is what "the raw forward limit at the max batch size" assumes.
HEAVY_CONCURRENCY = (1, 16, 64, 128)
WEATHER = ROOT / "models" / "weather" / "v1"
NOOP = ROOT / "tests" / "fixtures" / "models" / "noop" / "v1"      # weather's signature, no work


def raw_forward(model: servers.BenchModel, seconds: float) -> dict:
    code = f"""
import json, time, numpy as np, torch
from predictor.config import load_model_config
from predictor.runtime import TorchRunner, load_module, set_torch_threads
set_torch_threads(1)
config = load_model_config({str(model.dir)!r})
run = TorchRunner(load_module({str(model.dir)!r}, config), config)
out = {{}}
for rows in (1, {model.max_batch_size}):
    x = np.random.default_rng(0).standard_normal((rows, *{model.row_shape[1:]!r})).astype(np.float32)
    for _ in range(3): run([x])
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < {seconds / 2}:
        run([x]); n += 1
    out[rows] = rows * n / (time.perf_counter() - start)
print(json.dumps({{"batch1_rows_per_s": out[1], "max_batch": {model.max_batch_size}, "rows_per_s": out[{model.max_batch_size}]}}))
"""
    done = subprocess.run(["taskset", "-c", str(servers.SERVER_CPU), sys.executable, "-c", code],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    """The run with the median req/s, and every run's req/s."""
    chosen = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return {**chosen, "runs_rps": [round(r["rps"], 1) for r in runs]}


def settle(pid: int, limit: float = 10.0) -> None:
    """Until the server has finished what the load left queued (an unbatched server at
    concurrency 128 works on for about a second after its clients are gone), so that the next
    point does not share the server core with it."""
    deadline, before = time.monotonic() + limit, cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now - before < 0.01:
            return
        before = now


def run_model(model: servers.BenchModel, seconds: float, workdir: Path, concurrency: tuple[int, ...],
              repeat: int, ceiling: servers.BenchModel | None = None) -> dict:
    """Every server of the comparison runs at once (the idle ones take next to no CPU), and each
    round measures every point on each of them in turn, starting with a different server each
    round: this machine drifts by 15-40% over minutes, and servers measured minutes apart would
    carry that drift into their ratios."""
    raws = []
    kinds = {"stock": lambda log: servers.stock_kserve(model, log),
             "unbatched": lambda log: servers.ours(model, log, batching=False),
             "batched": lambda log: servers.ours(model, log, batching=True)}
    why_not = servers.mlserver_available()
    if why_not is None:
        kinds["mlserver"] = lambda log: servers.mlserver(model, log, workdir)
    else:
        print(f"mlserver: skipped, {why_not}")
    if ceiling is not None:     # the same requests to a model that does nothing: the protocol's own cost
        kinds["ceiling"] = lambda log: servers.ours(ceiling, log, batching=True)
    with contextlib.ExitStack() as stack:
        running = {kind: stack.enter_context(start(workdir / f"{model.name}-{kind}.log")) for kind, start in kinds.items()}
        runs: dict[str, dict[str, list[dict]]] = {kind: {} for kind in running}
        order = list(running)
        for r in range(repeat):
            raws.append(raw_forward(model, seconds))     # each round: the machine's speed drifts between them
            turn = order[r % len(order):] + order[:r % len(order)]
            for c in concurrency:
                for proto, measure in (("rest", load.rest), ("grpc", load.grpc)):
                    for kind in turn:
                        m, server = (ceiling if kind == "ceiling" else model), running[kind]
                        url = server.http_url if proto == "rest" else server.grpc_url
                        runs[kind].setdefault(f"{proto}_c{c}", []).append(
                            measure(url, m.name, m.input, m.row_shape, c, seconds))
                        settle(server.proc.pid)
    report = {"raw": {**sorted(raws, key=lambda r: r["rows_per_s"])[len(raws) // 2],
                      "runs_rows_per_s": [round(r["rows_per_s"]) for r in raws]}}
    for kind, points in runs.items():
        report[kind] = {key: median_of(rs) for key, rs in points.items()}
    return report


def ratio(report: dict, a: str, b: str, key: str, field: str = "rps") -> float | None:
    if a not in report or b not in report:
        return None
    return report[a][key][field] / report[b][key][field]


def goals(light: dict, heavy: dict) -> list[tuple[str, float | None, str]]:
    """(what, measured, goal) for each of the issue's goals."""
    raw = heavy["raw"]
    return [
        ("light REST c64 req/s: batched / stock KServe", ratio(light, "batched", "stock", "rest_c64"), ">= 4"),
        ("light REST c16 req/s: batched / stock KServe", ratio(light, "batched", "stock", "rest_c16"), ">= 3"),
        ("light gRPC c64 req/s: batched / stock KServe", ratio(light, "batched", "stock", "grpc_c64"), ">= 1.5"),
        ("light REST c64 req/s: batched / MLServer", ratio(light, "batched", "mlserver", "rest_c64"), ">= 2.5"),
        ("light REST c64 p99: batched / MLServer", ratio(light, "batched", "mlserver", "rest_c64", "p99_ms"), "<= 0.5"),
        ("light REST c1 p50: batched / stock KServe", ratio(light, "batched", "stock", "rest_c1", "p50_ms"), "<= 0.5"),
        ("heavy REST c128 rows/s: batched / raw forward at max batch",
         heavy["batched"]["rest_c128"]["rps"] / raw["rows_per_s"], ">= 0.8"),
        ("heavy gRPC c128 rows/s: batched / raw forward at max batch",
         heavy["batched"]["grpc_c128"]["rps"] / raw["rows_per_s"], ">= 0.8"),
        ("heavy REST c128: batched / one-core limit (forward + protocol)",
         heavy["batched"]["rest_c128"]["rps"] * (1 / raw["rows_per_s"] + 1 / heavy["ceiling"]["rest_c128"]["rps"]), "-"),
        ("heavy gRPC c128: batched / one-core limit (forward + protocol)",
         heavy["batched"]["grpc_c128"]["rps"] * (1 / raw["rows_per_s"] + 1 / heavy["ceiling"]["grpc_c128"]["rps"]), "-"),
    ]


def print_report(name: str, report: dict) -> None:
    raw = report["raw"]
    print(f"\n{name}: raw torch forward (1 thread) {raw['batch1_rows_per_s']:.0f} rows/s at batch 1, "
          f"{raw['rows_per_s']:.0f} at batch {raw['max_batch']}")
    print(f"{'server':<11}{'proto':<6}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for kind in ("stock", "mlserver", "unbatched", "batched", "ceiling"):
        for key, r in report.get(kind, {}).items():
            proto, c = key.split("_c")
            print(f"{kind:<11}{proto:<6}{c:>5}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per point; the median req/s is reported")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    a = parser.parse_args()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    started = time.time()
    light = servers.bench_model(servers.make_light_model(workdir / "mlp" / "v1"))
    report = {"light": run_model(light, a.seconds, workdir, CONCURRENCY, a.repeat),
              "heavy": run_model(servers.bench_model(WEATHER), a.seconds, workdir, HEAVY_CONCURRENCY, a.repeat,
                                 ceiling=servers.bench_model(NOOP))}
    print_report("light (MLP 64-512-512-10)", report["light"])
    print_report("heavy (weather)", report["heavy"])
    print("\nratios (goal):")
    report["goals"] = []
    for what, value, goal in goals(report["light"], report["heavy"]):
        shown = "n/a (MLServer not run)" if value is None else f"{value:.2f}"
        print(f"  {what:<62} {shown:>8}  (goal {goal})")
        report["goals"].append({"what": what, "value": value, "goal": goal})
    report["seconds_per_point"], report["runs_per_point"] = a.seconds, a.repeat
    report["wall_seconds"] = time.time() - started
    a.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {a.out}; logs in {workdir}")


if __name__ == "__main__":
    main()
