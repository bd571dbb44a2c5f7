"""What the shadow mirror costs the users of stable (issue 26): `python bench/shadow_cost.py`.

One stable predictor (cancer v2, pinned to the server core) with a mirror file; a candidate
predictor (the same model) on the load core beside wrk. Rounds alternate the mirror off (an
empty file) and on at each fraction, in the same processes and the same run, and print the p50,
p99 and throughput that wrk saw at each against off, stable's own CPU time per request, and what
the mirror counted (compared, dropped). Goal: under 5% added p99 at c=64 with the default
fraction 0.1. The candidate shares the load core with wrk (two cores: stable has the other), so
while mirroring wrk itself has less CPU: stable's CPU per request is the cleaner figure.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.servers import SERVER_CPU  # noqa: E402
from harness.processes import PredictorProcess, cpu_seconds, metric  # noqa: E402

MODEL = ROOT / "models" / "cancer" / "v2"


def counted(p: PredictorProcess) -> dict[str, float]:
    text = p.metrics()
    return {o: metric(text, "predictor_shadow_requests_total", outcome=o) for o in ("compared", "failed", "dropped")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fractions", default="0.1,1.0")
    args = parser.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    work = Path(tempfile.mkdtemp(prefix="shadow-cost-"))
    config = work / "shadow.yaml"
    config.write_text("")
    with PredictorProcess(MODEL, name="cancer", cpu=load.LOAD_CPU, log_path=work / "candidate.log") as candidate, \
            PredictorProcess(MODEL, name="cancer", cpu=SERVER_CPU, env={"SHADOW_CONFIG": str(config)},
                             log_path=work / "stable.log") as stable:
        results: dict[float, list[dict]] = {f: [] for f in [0.0, *fractions]}
        for r in range(args.rounds):
            order = [0.0, *fractions] if r % 2 == 0 else [*fractions, 0.0]
            for fraction in order:
                config.write_text(f"url: http://{candidate.http_url}\nfraction: {fraction}\n" if fraction else "")
                time.sleep(2.0)                        # the mirror reads its file each second
                before, cpu = counted(stable), cpu_seconds(stable.proc.pid)
                got = load.rest(stable.http_url, "cancer", "features", [1, 30], args.concurrency, args.seconds)
                after = counted(stable)
                got["cpu_us"] = (cpu_seconds(stable.proc.pid) - cpu) / (got["rps"] * args.seconds) * 1e6
                got.update({k: after[k] - before[k] for k in after})
                results[fraction].append(got)
        off = results[0.0]

        def best(runs: list[dict], key: str) -> float:
            return min(x[key] for x in runs) if key.endswith(("_ms", "_us")) else max(x[key] for x in runs)
        print(f"stable cancer/v2 at c={args.concurrency}, {args.rounds} rounds of {args.seconds:.0f}s, best of each:")
        print(f"  mirror off: stable's CPU {best(off, 'cpu_us'):.0f} us per request; {best(off, 'rps'):.0f} req/s, "
              f"p50 {best(off, 'p50_ms'):.2f} ms, p99 {best(off, 'p99_ms'):.2f} ms")
        for f in fractions:
            on = results[f]
            mirrored = sum(x["compared"] + x["failed"] + x["dropped"] for x in on)
            print(f"  mirror {f:g}: stable's CPU {best(on, 'cpu_us'):.0f} us per request "
                  f"(x{best(on, 'cpu_us') / best(off, 'cpu_us'):.3f}); {best(on, 'rps'):.0f} req/s (x{best(on, 'rps') / best(off, 'rps'):.3f}), "
                  f"p50 {best(on, 'p50_ms'):.2f} ms (x{best(on, 'p50_ms') / best(off, 'p50_ms'):.3f}), "
                  f"p99 {best(on, 'p99_ms'):.2f} ms (x{best(on, 'p99_ms') / best(off, 'p99_ms'):.3f}); "
                  f"mirrored {mirrored:.0f}: compared {sum(x['compared'] for x in on):.0f}, "
                  f"failed {sum(x['failed'] for x in on):.0f}, dropped {sum(x['dropped'] for x in on):.0f}; "
                  f"user errors {sum(x['errors'] for x in on)}")


if __name__ == "__main__":
    main()
