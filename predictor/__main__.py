"""`python -m predictor --model_dir models/cancer/v2`: serve one model version over V2 REST and gRPC.

Every flag also reads an environment variable, so a container and a shell both work.
KServe's own flags (--http_port, --grpc_port, --enable_grpc, ...) are accepted as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
from typing import Callable

from kserve import model_server as kserve_model_server

from . import runtime
from .config import ModelConfig, load_model_config
from .model import TorchModel
from .repository import TorchModelRepository
from .server import build_server


def _env(name: str, default=None, cast=str):
    value = os.environ.get(name)
    return default if value in (None, "") else cast(value)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m predictor", parents=[kserve_model_server.parser], description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--model_dir", default=_env("MODEL_DIR", "/mnt/models"), help="model version directory with config.yaml and model.pt [MODEL_DIR]"
    )
    parser.add_argument(
        "--torch_threads", type=int, default=_env("TORCH_THREADS", None, int), help="intra-op threads for the forward pass [TORCH_THREADS]"
    )
    parser.add_argument(
        "--batching", type=_bool, default=_env("BATCHING", None, _bool), help="dynamic batching on or off; default from config.yaml [BATCHING]"
    )
    parser.add_argument("--max_batch_size", type=int, default=_env("MAX_BATCH_SIZE", None, int), help="rows per forward pass [MAX_BATCH_SIZE]")
    parser.add_argument(
        "--max_queue_delay_ms",
        type=float,
        default=_env("MAX_QUEUE_DELAY_MS", None, float),
        help="how long a request may wait for a batch to fill while the model is busy [MAX_QUEUE_DELAY_MS]",
    )
    parser.add_argument(
        "--max_queue_size",
        type=int,
        default=_env("MAX_QUEUE_SIZE", None, int),
        help="rows that may wait; more are rejected with 429 [MAX_QUEUE_SIZE]",
    )
    parser.add_argument(
        "--batch_instances", type=int, default=_env("BATCH_INSTANCES", None, int), help="forward passes that may run at once [BATCH_INSTANCES]"
    )
    parser.add_argument(
        "--request_timeout_ms", type=float, default=_env("REQUEST_TIMEOUT_MS", None, float), help="default per-request deadline [REQUEST_TIMEOUT_MS]"
    )
    parser.add_argument(
        "--forward_timeout_ms",
        type=float,
        default=_env("FORWARD_TIMEOUT_MS", None, float),
        help="watchdog: a forward pass longer than this fails its batch and readiness turns "
        "false until it returns; 0 turns it off; default from config.yaml, else 30000 "
        "[FORWARD_TIMEOUT_MS]",
    )
    parser.add_argument(
        "--device", default=_env("DEVICE"), help="cpu, cuda, cuda:N or auto (cuda when torch sees a GPU); default from config.yaml, else cpu [DEVICE]"
    )
    parser.add_argument("--half", type=_bool, default=_env("HALF", None, _bool), help="run float inputs and the model in FP16 (CUDA only) [HALF]")
    parser.add_argument(
        "--max_body_bytes",
        type=int,
        default=_env("MAX_BODY_BYTES", 16 * 1024 * 1024, int),
        help="largest REST body or gRPC message accepted [MAX_BODY_BYTES]",
    )
    parser.add_argument(
        "--enable_repository",
        type=_bool,
        default=_env("ENABLE_REPOSITORY", False, _bool),
        help="serve the V2 repository extension (load and unload models by name) [ENABLE_REPOSITORY]",
    )
    parser.add_argument(
        "--shutdown_delay",
        type=float,
        default=_env("SHUTDOWN_DELAY", 5.0, float),
        help="seconds after SIGTERM during which readiness fails but requests are still "
        "accepted, so endpoints stop routing here first [SHUTDOWN_DELAY]",
    )
    parser.add_argument(
        "--grace_period",
        type=int,
        default=_env("GRACE_PERIOD", 20, int),
        help="seconds REST and gRPC (in parallel) then have to finish in-flight requests; "
        "with shutdown_delay within the pod's terminationGracePeriodSeconds (30) [GRACE_PERIOD]",
    )
    parser.add_argument(
        "--lean_path",
        type=_bool,
        default=_env("LEAN_PATH", True, _bool),
        help="serve inference (REST and gRPC) straight from the wire into numpy; false hands "
        "it to KServe's FastAPI and gRPC handlers, with the same checks [LEAN_PATH]",
    )
    parser.add_argument(
        "--access_log",
        type=_bool,
        default=_env("ACCESS_LOG", False, _bool),
        help="log every REST request (uvicorn's access log) and gRPC call [ACCESS_LOG]",
    )
    parser.add_argument(
        "--shadow_config",
        default=_env("SHADOW_CONFIG"),
        help="the shadow mirror's config file (a mounted ConfigMap key): while it names a "
        "candidate, a fraction of answered requests is sent to it too and the answers "
        "compared (predictor_shadow_*); absent or empty: off [SHADOW_CONFIG]",
    )
    parser.set_defaults(
        model_name=_env("MODEL_NAME"),
        http_port=_env("HTTP_PORT", 8080, int),
        grpc_port=_env("GRPC_PORT", 8081, int),
        # gRPC's threaded server: each call holds a thread until answered, so
        # this bounds the gRPC rows one batch can gather (KServe's default is 4)
        max_threads=_env("MAX_THREADS", 64, int),
    )
    return parser


def overrides(args: argparse.Namespace) -> Callable[[ModelConfig], ModelConfig]:
    """The flags' and environment's changes to a model's config.yaml, for the served model and
    any the repository extension loads later."""

    def configure(config: ModelConfig) -> ModelConfig:
        config = config.with_batching(
            enabled=args.batching,
            max_batch_size=args.max_batch_size,
            max_queue_delay=None if args.max_queue_delay_ms is None else args.max_queue_delay_ms / 1000,
            max_queue_size=args.max_queue_size,
            instances=args.batch_instances,
            request_timeout=None if args.request_timeout_ms is None else args.request_timeout_ms / 1000,
        )
        if args.forward_timeout_ms is not None:  # 0 means off, which with_batching's None cannot say
            config = dataclasses.replace(
                config, batching=dataclasses.replace(config.batching, forward_timeout=args.forward_timeout_ms / 1000 or None)
            )
        if args.device:
            config = dataclasses.replace(config, device=args.device)
        if args.half is not None:
            config = dataclasses.replace(config, half=args.half)
        return config

    return configure


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.workers != 1:
        raise SystemExit("--workers must be 1: each process has one batching queue; scale with replicas")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime.set_torch_threads(args.torch_threads)
    configure = overrides(args)
    model = TorchModel(args.model_dir, configure(load_model_config(args.model_dir)), name=args.model_name, shadow_config=args.shadow_config)
    model.load()
    # torch, KServe and the model leave ~250,000 objects that live as long as the process; a full
    # collection walks them all (~0.2 s on a slow core), a p99 spike every few thousand requests.
    # Frozen, the collector skips them.
    gc.collect()
    gc.freeze()
    server = build_server(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        enable_grpc=args.enable_grpc,
        grpc_threads=args.max_threads,
        max_body_bytes=args.max_body_bytes,
        grace_period=args.grace_period,
        registered_models=TorchModelRepository(args.model_dir, configure=configure),
        enable_repository=args.enable_repository,
        shutdown_delay=args.shutdown_delay,
        lean_path=args.lean_path,
        access_log=args.access_log,
        access_log_format=args.access_log_format,
    )
    server.start([model])


if __name__ == "__main__":
    main()
