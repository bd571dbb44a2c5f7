"""A closed-loop gRPC load generator: `concurrency` workers, each sending single-row V2
ModelInfer requests back to back for `seconds`. Prints {"rps", "p50_ms", "p99_ms", "errors"}.

Run in its own process (pinned to its own core by bench/run.py) so it does not share the
server's CPU or event loop.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
import numpy as np
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc


async def run(url: str, model: str, name: str, shape: list[int], concurrency: int, seconds: float) -> dict:
    row = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    request = pb.ModelInferRequest(
        model_name=model,
        inputs=[pb.ModelInferRequest.InferInputTensor(name=name, datatype="FP32", shape=shape)],
        raw_input_contents=[row.tobytes()])
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(url) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        await stub.ModelInfer(request)  # connect and warm up
        end = time.perf_counter() + seconds

        async def worker():
            nonlocal errors
            while time.perf_counter() < end:
                start = time.perf_counter()
                try:
                    await stub.ModelInfer(request)
                    latencies.append(time.perf_counter() - start)
                except grpc.aio.AioRpcError:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"rps": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": errors}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--shape", required=True, help="comma-separated, e.g. 1,60,4")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=5)
    a = p.parse_args()
    shape = [int(d) for d in a.shape.split(",")]
    print(json.dumps(asyncio.run(run(a.url, a.model, a.input, shape, a.concurrency, a.seconds))))


if __name__ == "__main__":
    main()
