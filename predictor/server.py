"""KServe's ModelServer, made to drain on SIGTERM and to map the predictor's errors to HTTP.

Shutdown order on SIGTERM (or SIGINT):
1. uvicorn closes the REST listener and waits for in-flight HTTP requests (KServe's default);
2. then the gRPC server stops accepting and waits for in-flight RPCs (up to the grace period);
3. then each model's batcher drains whatever is still queued;
4. only then are the models unloaded and the process exits. No accepted request is lost.
KServe's own stop() unloads models straight away, which would fail requests still in a batch.
"""
from __future__ import annotations

import asyncio
import json
import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve import model_server as kserve_model_server

from .errors import PayloadTooLarge, ServingError
from .model import TorchModel

log = logging.getLogger(__name__)


async def serving_error_handler(_request, exc: ServingError) -> JSONResponse:
    return JSONResponse(status_code=exc.http_status, content={"error": str(exc)})


class BodyLimit:
    """ASGI middleware: refuses request bodies over max_bytes with 413, declared or streamed."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = json.dumps({"error": f"request body of {int(declared)} bytes exceeds the limit of {self.max_bytes}"})
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)


class JsonUnlessBinary:
    """ASGI middleware: an infer body without Inference-Header-Content-Length is all JSON.

    That is the V2 binary-data extension's rule (and Triton's), but KServe only parses JSON when
    the content-type says so; clients such as tritonclient send JSON without one.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/infer"):
            headers = [(k, v) for k, v in scope.get("headers") or [] if k != b"content-type"]
            names = {k for k, _ in scope.get("headers") or []}
            if b"inference-header-content-length" not in names:
                scope = {**scope, "headers": headers + [(b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def configure_app(app: FastAPI, max_body_bytes: int) -> None:
    """Adds the predictor's pieces to KServe's FastAPI app before the server builds it."""
    app.add_exception_handler(ServingError, serving_error_handler)
    app.add_middleware(JsonUnlessBinary)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)


class DrainingModelServer(ModelServer):
    def stop(self, sig: int) -> None:
        log.info("signal %s: draining before exit", sig)
        asyncio.get_event_loop().create_task(self._drain_and_stop(sig))

    async def _drain_and_stop(self, sig: int) -> None:
        models = list(self.registered_models.get_models().values())
        for model in models:
            model.ready = False  # readiness fails at once, so no new traffic is routed here
        if self._grpc_server:
            await self._grpc_server.stop(sig)
        await asyncio.gather(*(m.drain() for m in models if isinstance(m, TorchModel)))
        for name in list(self.registered_models.get_models()):
            self.registered_models.unload(name)
        log.info("drained; exiting")


def build_server(*, http_port: int, grpc_port: int, enable_grpc: bool, grpc_threads: int,
                 max_body_bytes: int, grace_period: int, registered_models=None) -> DrainingModelServer:
    configure_app(kserve_model_server.app, max_body_bytes)
    # KServe's gRPC server reads its message limits from the arguments it parsed at import.
    kserve_model_server.args.grpc_max_receive_message_length = max_body_bytes
    return DrainingModelServer(
        http_port=http_port, grpc_port=grpc_port, workers=1, max_threads=grpc_threads,
        enable_grpc=enable_grpc, enable_latency_logging=False, grace_period=grace_period,
        registered_models=registered_models,
    )
