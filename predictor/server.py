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
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve import model_server as kserve_model_server
from kserve.protocol.dataplane import DataPlane

from .errors import ServingError
from .model import TorchModel
from .repository import RepositoryExtension

log = logging.getLogger(__name__)


async def serving_error_handler(_request, exc: ServingError) -> JSONResponse:
    return JSONResponse(status_code=exc.http_status, content={"error": str(exc)})


async def bad_body_handler(_request, exc: RequestValidationError) -> JSONResponse:
    """Malformed JSON, or JSON that is not a V2 request: 400 with the `{"error": ...}` every
    other error has (FastAPI's default is 422 with a `detail` list)."""
    problems = []
    for e in exc.errors():
        path = [str(p) for p in e.get("loc", ())[1:] if p != "InferenceRequest"]
        if e.get("type") == "json_invalid":
            problems.append(f"JSON decode error at character {path[-1] if path else '?'}: "
                            f"{(e.get('ctx') or {}).get('error', e.get('msg', ''))}")
        elif "bytes" not in path:           # the endpoint's other accepted body type: not the user's
            problems.append(f"{'.'.join(path) or 'body'}: {e.get('msg', '')}")
    problems = "; ".join(problems)
    return JSONResponse(status_code=400, content={"error": f"the request body is not a V2 inference request: {problems}"})


class BodyLimit:
    """ASGI middleware: refuses request bodies over max_bytes with 413, declared or streamed
    (chunked). It reads the whole body before the app runs: raised inside the app's own read,
    FastAPI would turn the refusal into a 400."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send, size: str) -> None:
        body = json.dumps({"error": f"request body of {size} bytes exceeds the limit of {self.max_bytes}"})
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send, declared.decode())
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":      # the client left before sending it all
                return
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.max_bytes:
                return await self._refuse(send, f"more than {self.max_bytes}")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()                 # after the body: the disconnect, if any
            replayed = True
            return {"type": "http.request", "body": b"".join(parts), "more_body": False}

        await self.app(scope, replay, send)


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


class CancelOnDisconnect:
    """ASGI middleware: an inference request whose client disconnects is cancelled, as gRPC
    cancels an RPC: predict() counts it as 499 and its rows leave the batcher's queue, instead of
    running for nobody (uvicorn only tells a request that asks, and KServe never asks)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith("/infer"):
            return await self.app(scope, receive, send)
        body_read = asyncio.Event()

        async def tracked_receive():
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_read.set()
            return message

        async def watch() -> bool:
            await body_read.wait()          # from here on the app reads nothing more: listen for the close
            while (await receive())["type"] != "http.disconnect":
                pass
            app.cancel()
            return True

        app = asyncio.ensure_future(self.app(scope, tracked_receive, send))
        watcher = asyncio.ensure_future(watch())
        try:
            await app
        except asyncio.CancelledError:
            if not (watcher.done() and not watcher.cancelled()):
                raise                       # cancelled from outside (shutdown), not by the client
        finally:
            watcher.cancel()


class PredictorDataPlane(DataPlane):
    """KServe's data plane with readiness and metadata that tell the truth about the model."""

    async def ready(self) -> bool:
        """Server readiness (REST /v2/health/ready, gRPC ServerReady) is every model's: KServe's
        says ready whatever its models are, so an unloaded or stuck model kept receiving traffic."""
        models = self._model_registry.get_models()
        return bool(models) and all([await model.healthy() for model in models.values()])

    async def model_metadata(self, model_name: str) -> dict:
        """With the model's platform and version (KServe leaves platform empty)."""
        metadata = await super().model_metadata(model_name)
        model = self._model_registry.get_model(model_name)
        if isinstance(model, TorchModel):
            metadata.update(platform=model.config.platform, versions=[model.config.version])
        return metadata


def configure_app(app: FastAPI, max_body_bytes: int) -> None:
    """Adds the predictor's pieces to KServe's FastAPI app before the server builds it."""
    app.add_exception_handler(ServingError, serving_error_handler)
    app.add_exception_handler(RequestValidationError, bad_body_handler)
    app.add_middleware(JsonUnlessBinary)
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)


class DrainingModelServer(ModelServer):
    def __init__(self, *, enable_repository: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.dataplane = PredictorDataPlane(model_registry=self.registered_models)
        self.model_repository_extension = RepositoryExtension(self.registered_models, enable_repository)

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
                 max_body_bytes: int, grace_period: int, registered_models=None,
                 enable_repository: bool = False) -> DrainingModelServer:
    configure_app(kserve_model_server.app, max_body_bytes)
    # KServe's gRPC server reads its message limits from the arguments it parsed at import.
    kserve_model_server.args.grpc_max_receive_message_length = max_body_bytes
    return DrainingModelServer(
        http_port=http_port, grpc_port=grpc_port, workers=1, max_threads=grpc_threads,
        enable_grpc=enable_grpc, enable_latency_logging=False, grace_period=grace_period,
        registered_models=registered_models, enable_repository=enable_repository,
    )
