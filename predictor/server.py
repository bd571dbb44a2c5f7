"""KServe's ModelServer, made to shut down without losing a request and to tell the truth in
its readiness, metadata and errors.

Shutdown on SIGTERM (or SIGINT), in either deployment mode:
1. readiness fails at once (REST /v2/health/ready, gRPC ServerReady), while both listeners keep
   accepting and serving for `shutdown_delay` seconds, so Kubernetes endpoints, Knative and
   gateways stop routing here before anything is refused;
2. then REST (uvicorn) and gRPC stop accepting and finish their in-flight requests in parallel,
   each within the one grace period;
3. then each model's batcher drains whatever is still queued, and only then are the models
   unloaded and the process exits. No accepted request is lost.
KServe's own stop() unloads models straight away (failing requests still in a batch), and
uvicorn would close the REST listener the moment the signal arrives.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import ModelServer
from kserve import logging as kserve_logging
from kserve.protocol.dataplane import DataPlane

from . import kserve_seam
from .errors import ServingError
from .grpc_infer import LeanGRPCServer
from .middleware import BodyLimit, CancelOnDisconnect, JsonUnlessBinary
from .model import TorchModel
from .repository import RepositoryExtension
from .rest import LeanInfer

log = logging.getLogger(__name__)


async def serving_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServingError)  # registered for it alone
    return JSONResponse(status_code=exc.http_status, content={"error": str(exc)})


async def bad_body_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Malformed JSON, or JSON that is not a V2 request: 400 with the `{"error": ...}` every
    other error has (FastAPI's default is 422 with a `detail` list)."""
    assert isinstance(exc, RequestValidationError)  # registered for it alone
    problems = []
    for e in exc.errors():
        path = [str(p) for p in e.get("loc", ())[1:] if p != "InferenceRequest"]
        if e.get("type") == "json_invalid":
            problems.append(f"JSON decode error at character {path[-1] if path else '?'}: {(e.get('ctx') or {}).get('error', e.get('msg', ''))}")
        elif "bytes" not in path:  # the endpoint's other accepted body type: not the user's
            problems.append(f"{'.'.join(path) or 'body'}: {e.get('msg', '')}")
    return JSONResponse(status_code=400, content={"error": f"the request body is not a V2 inference request: {'; '.join(problems)}"})


class PredictorDataPlane(DataPlane):
    """KServe's data plane with readiness and metadata that tell the truth about the model."""

    draining = False  # set on SIGTERM: not ready, though still serving

    async def ready(self) -> bool:
        """Server readiness (REST /v2/health/ready, gRPC ServerReady) is every model's: KServe's
        says ready whatever its models are, so an unloaded or stuck model kept receiving traffic."""
        if self.draining:
            return False
        models = kserve_seam.model_registry(self).get_models()
        return bool(models) and all([await model.healthy() for model in models.values()])

    async def model_metadata(self, model_name: str) -> dict:
        """With the model's platform and version (KServe leaves platform empty)."""
        metadata = await super().model_metadata(model_name)
        model = kserve_seam.model_registry(self).get_model(model_name)
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


def _silence(name: str) -> None:
    """No records from this logger at all (uvicorn logs access only if its logger has handlers)."""
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate = [], False
    logger.setLevel(logging.CRITICAL + 1)


class DrainingModelServer(ModelServer):
    def __init__(
        self,
        *,
        enable_repository: bool = False,
        shutdown_delay: float = 0.0,
        lean_path: bool = True,
        access_log: bool = False,
        max_body_bytes: int = 16 * 1024 * 1024,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dataplane = PredictorDataPlane(model_registry=self.registered_models)
        self.model_repository_extension = RepositoryExtension(self.registered_models, enable_repository)
        self.shutdown_delay = shutdown_delay
        self.lean_path, self.access_log, self.max_body_bytes = lean_path, access_log, max_body_bytes
        self._shutdown: asyncio.Task | None = None

    def serving_model(self, name: str) -> TorchModel | None:
        """The model the lean paths serve `name` with, or None to leave the request to KServe
        (an unknown model, one not ours, or one not ready get KServe's own answers)."""
        model = self.registered_models.get_model(name)
        return model if isinstance(model, TorchModel) and model.ready else None

    def start(self, models) -> None:
        if self.event_loop in ("auto", "uvloop"):
            # KServe runs its servers under asyncio.run(), so uvicorn's own `loop` setting never
            # applies and the stdlib loop serves; uvloop (a KServe dependency) is the one meant.
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            asyncio.set_event_loop(asyncio.new_event_loop())  # KServe's setup_event_loop() asks for one
        if kserve_seam.take_over_grpc(self):
            grpc_server = LeanGRPCServer(
                self.grpc_port,
                self.dataplane,
                self.model_repository_extension,
                vars(kserve_seam.parsed_args()),
                grace_period=self.grace_period,
                lookup=self.serving_model if self.lean_path else None,
                log_calls=self.access_log,
            )
            kserve_seam.set_grpc_server(self, grpc_server)
            self.servers.append(grpc_server.start(self.max_threads))
        super().start(models)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        uvicorn_server = kserve_seam.uvicorn_server(self)
        if uvicorn_server is not None:
            # uvicorn takes the signals while it serves: hand them here
            uvicorn_server.handle_exit = lambda sig, _frame: loop.call_soon_threadsafe(self.stop, sig)
            if not self.access_log:  # a log line or two per request cost CPU: uvicorn's and KServe's
                _silence("uvicorn.access")
                _silence(kserve_logging.KSERVE_TRACE_LOGGER_NAME)
            if self.lean_path:  # outside FastAPI and its middlewares: inference skips all of them
                kserve_seam.serve_asgi_app(self, LeanInfer(kserve_seam.rest_app(), self.serving_model, self.max_body_bytes))
        await super()._serve()
        if self._shutdown is not None:
            await self._shutdown

    def stop(self, sig: int) -> None:
        if self._shutdown is not None:
            log.info("signal %s: already shutting down", signal.Signals(sig).name)
            return
        log.info("signal %s: not ready; serving %gs more, then draining", signal.Signals(sig).name, self.shutdown_delay)
        self.dataplane.draining = True
        self._shutdown = asyncio.get_event_loop().create_task(self._drain_and_stop())

    async def _drain_and_stop(self) -> None:
        await asyncio.sleep(self.shutdown_delay)  # routing moves away meanwhile
        uvicorn_server, grpc_server = kserve_seam.uvicorn_server(self), kserve_seam.grpc_server(self)
        if uvicorn_server is not None:
            uvicorn_server.should_exit = True  # uvicorn: close, finish in-flight (grace period)
        if grpc_server is not None:
            await grpc_server.stop()  # in parallel with uvicorn's own shutdown
        models = list(self.registered_models.get_models().values())
        await asyncio.gather(*(m.drain() for m in models if isinstance(m, TorchModel)))
        for name in list(self.registered_models.get_models()):
            self.registered_models.unload(name)
        log.info("drained; exiting")


def build_server(
    *,
    http_port: int,
    grpc_port: int,
    enable_grpc: bool,
    grpc_threads: int,
    max_body_bytes: int,
    grace_period: int,
    registered_models=None,
    enable_repository: bool = False,
    shutdown_delay: float = 0.0,
    lean_path: bool = True,
    access_log: bool = False,
    access_log_format: str | None = None,
) -> DrainingModelServer:
    configure_app(kserve_seam.rest_app(), max_body_bytes)
    # KServe's gRPC server reads its message limits from the arguments it parsed at import.
    kserve_seam.parsed_args().grpc_max_receive_message_length = max_body_bytes
    return DrainingModelServer(
        http_port=http_port,
        grpc_port=grpc_port,
        workers=1,
        max_threads=grpc_threads,
        enable_grpc=enable_grpc,
        enable_latency_logging=False,
        grace_period=grace_period,
        registered_models=registered_models,
        enable_repository=enable_repository,
        shutdown_delay=shutdown_delay,
        lean_path=lean_path,
        access_log=access_log,
        max_body_bytes=max_body_bytes,
        # KServe's default comes from the command line it parsed at import, where `--access_log
        # true` is an abbreviation of its --access_log_format: ours, parsed in full, is passed
        access_log_format=access_log_format,
    )
