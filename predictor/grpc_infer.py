"""The gRPC side: KServe's servicer behind gRPC's threaded server, with ModelInfer going straight
from the protobuf message into numpy and back.

KServe's ModelInfer builds an InferRequest (typed contents become Python lists), runs it
through its data plane and builds the reply through InferResponse; every call also passes a
logging interceptor and an exception interceptor that re-wrap the handler. Here ModelInfer
reads raw_input_contents with np.frombuffer (typed contents with numpy), calls the model's
one infer() core, and answers raw_output_contents. Errors become status codes without
interceptors (see _with_kserve_status). A model that is unknown or not ready goes to KServe's
ModelInfer for KServe's own answer.

The server is gRPC's threaded one, not grpc.aio (KServe's choice). grpc.aio hands calls to the
event loop about one per millisecond, so at concurrency 64 the batcher saw 1.5 rows per batch;
the threaded server receives calls on its own threads, which wait while the async servicer runs
each call on the event loop, so calls pile up for the batcher (about 8 rows per batch, a third
more req/s on one core; bench/run.py). The servicer and its errors are unchanged.
"""

from __future__ import annotations

import asyncio
from concurrent import futures
from typing import Any, Callable

import grpc
from grpc import StatusCode, aio
from kserve.logging import logger
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from . import kserve_seam
from .errors import ServingError
from .v2 import Output, Request, Tensor

_OTHER_METHODS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "RepositoryModelLoad", "RepositoryModelUnload")
# V2 gRPC typed contents: the field each datatype's values travel in when not raw
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def request_from_grpc(message: pb.ModelInferRequest) -> Request:
    """The request as the codec reads it; the message's raw bytes are not copied."""
    kserve_seam.validate_grpc_request(message)  # KServe's checks, with KServe's messages
    raw = message.raw_input_contents
    inputs = []
    for i, t in enumerate(message.inputs):
        tensor = Tensor(t.name, t.datatype, list(t.shape))
        if raw:
            tensor.raw = raw[i]
        elif t.HasField("contents") and t.datatype.upper() in _CONTENTS:
            tensor.data = getattr(t.contents, _CONTENTS[t.datatype.upper()])
        inputs.append(tensor)
    outputs: dict[str, bool | None] | None = {o.name: None for o in message.outputs} or None
    return Request(inputs, id=message.id, parameters=message.parameters, outputs=outputs)


def reply_to_grpc(request: Request, outputs: list[Output], model_name: str, version: str) -> pb.ModelInferResponse:
    """Every output as raw_output_contents, as tritonclient and KServe's own client read them."""
    return pb.ModelInferResponse(
        model_name=model_name,
        model_version=version,
        id=request.id,
        outputs=[pb.ModelInferResponse.InferOutputTensor(name=o.name, datatype=o.datatype, shape=o.array.shape) for o in outputs],
        raw_output_contents=[o.array.tobytes() for o in outputs],
    )


class LeanServicer(InferenceServicer):
    def __init__(self, data_plane, model_repository_extension, lookup: Callable[[str], Any] | None):
        super().__init__(data_plane, model_repository_extension)
        self.data_plane, self._lookup = data_plane, lookup  # our own names, not InferenceServicer's
        self._kserve_model_infer = _with_kserve_status(super().ModelInfer, "ModelInfer")

    async def ModelInfer(self, request: pb.ModelInferRequest, context) -> pb.ModelInferResponse:
        model = self._lookup(request.model_name) if self._lookup else None
        if model is None:
            return await self._kserve_model_infer(request, context)
        try:
            v2_request = request_from_grpc(request)
            outputs = await model.infer(v2_request, "grpc")
        except ServingError as exc:  # InvalidInput too: INVALID_ARGUMENT
            await context.abort(exc.status_code, exc.details)
        return reply_to_grpc(v2_request, outputs, model.name, model.config.version)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context) -> pb.ModelMetadataResponse:
        """With `versions` (KServe's servicer drops them)."""
        metadata = await self.data_plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            platform=metadata["platform"],
            versions=metadata.get("versions", []),
            inputs=metadata["inputs"],
            outputs=metadata["outputs"],
        )


def _with_kserve_status(method, name: str):
    """KServe maps its errors to status codes in an interceptor, which gRPC runs in Python on
    every call of every method (without it ModelInfer served about a quarter more req/s at
    concurrency 64); here the mapping wraps the methods that need it, once."""
    status = ExceptionToStatusInterceptor()

    async def mapped(request, context):
        try:
            return await method(request, context)
        except aio.AbortError:
            raise  # already answered with its status
        except Exception as exc:
            await status.handle_exception(exc, request, context, f"/inference.GRPCInferenceService/{name}")

    return mapped


class _Aborted(aio.AbortError):
    """An abort on the event loop; the call's own thread answers with its status."""

    def __init__(self, code: StatusCode, details: str):
        super().__init__(details)
        self.code, self.details = code, details


class _LoopSideContext:
    """What the async servicer sees of a threaded call's context: an awaitable abort, as grpc.aio's."""

    def __init__(self, context: grpc.ServicerContext):
        self._context = context

    async def abort(self, code: StatusCode, details: str = "") -> None:
        raise _Aborted(code, details)

    def trailing_metadata(self) -> tuple:
        return self._context.trailing_metadata() or ()  # grpc.aio's is () before any is set; KServe adds to it

    def __getattr__(self, name: str):
        return getattr(self._context, name)


class ThreadedServicer:
    """Each method of `servicer` (async) run on `loop` from gRPC's handler thread, which waits."""

    def __init__(self, servicer: InferenceServicer, loop: asyncio.AbstractEventLoop):
        for name in ("ModelInfer", *_OTHER_METHODS):
            setattr(self, name, self._on_loop(getattr(servicer, name), loop))

    @staticmethod
    def _on_loop(method, loop):
        def call(request, context: grpc.ServicerContext):
            done = asyncio.run_coroutine_threadsafe(method(request, _LoopSideContext(context)), loop)
            # a client's cancel or deadline ends the call: cancel its task, and the request leaves the queue
            if not context.add_callback(done.cancel):
                done.cancel()
            try:
                return done.result()
            except _Aborted as abort:
                context.abort(abort.code, abort.details)
            except futures.CancelledError:
                context.abort(StatusCode.CANCELLED, "the call ended before its answer")

        return call


class _LogCalls(grpc.ServerInterceptor):
    def intercept_service(self, continuation, handler_call_details):
        logger.info("grpc method: %s", handler_call_details.method)
        return continuation(handler_call_details)


class LeanGRPCServer(GRPCServer):
    """KServe's GRPCServer with the lean servicer behind gRPC's threaded server, and a log line
    per call only when asked. `max_workers` threads take calls: at most that many are in the
    batcher at once, and more wait in gRPC's queue."""

    def __init__(
        self,
        port: int,
        data_plane,
        model_repository_extension,
        kwargs: dict,
        grace_period: int = 30,
        *,
        lookup: Callable[[str], Any] | None,
        log_calls: bool = False,
    ):
        super().__init__(port, data_plane, model_repository_extension, kwargs, grace_period=grace_period)
        # ours, under our own names: start() and stop() below are all of this server's life
        self.port, self.data_plane, self.repository, self.kwargs = port, data_plane, model_repository_extension, kwargs
        self.grace_period, self._lookup, self._log_calls = grace_period, lookup, log_calls
        self.server: grpc.Server | None = None

    async def start(self, max_workers):
        self.server = server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
            interceptors=[_LogCalls()] if self._log_calls else [],
            options=[
                ("grpc.max_send_message_length", self.kwargs.get("grpc_max_send_message_length")),
                ("grpc.max_receive_message_length", self.kwargs.get("grpc_max_receive_message_length")),
            ],
        )
        servicer = LeanServicer(self.data_plane, self.repository, self._lookup)
        for name in _OTHER_METHODS:
            setattr(servicer, name, _with_kserve_status(getattr(servicer, name), name))
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(ThreadedServicer(servicer, asyncio.get_running_loop()), server)
        server.add_insecure_port(f"[::]:{self.port}")
        logger.info("Starting gRPC server on port %s, %d threads (lean ModelInfer: %s)", self.port, max_workers, self._lookup is not None)
        server.start()
        await asyncio.to_thread(server.wait_for_termination)

    async def stop(self, sig: int | None = None):
        if self.server is not None:
            logger.info("Waiting for gRPC server shutdown")
            # calls in flight finish on the event loop meanwhile, so wait off it
            await asyncio.to_thread(self.server.stop(grace=self.grace_period).wait)
            logger.info("gRPC server shutdown complete")
