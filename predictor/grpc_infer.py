"""The gRPC side: KServe's servicer and server, with ModelInfer going straight from the protobuf
message into numpy and back.

KServe's ModelInfer builds an InferRequest (typed contents become Python lists), runs it
through its data plane and builds the reply through InferResponse; every call also passes a
logging interceptor and an exception interceptor that re-wrap the handler. Here ModelInfer
reads raw_input_contents with np.frombuffer (typed contents with numpy), calls the model's
one infer() core, and answers raw_output_contents. Errors become status codes without
interceptors (see _with_kserve_status). A model that is unknown or not ready goes to KServe's
ModelInfer for KServe's own answer.
"""
from __future__ import annotations

from concurrent import futures
from typing import Any, Callable

from grpc import StatusCode, aio
from kserve.errors import InvalidInput
from kserve.logging import logger
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from .errors import ServingError
from .v2 import Output, Request, Tensor

_OTHER_METHODS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
                  "RepositoryModelLoad", "RepositoryModelUnload")
# V2 gRPC typed contents: the field each datatype's values travel in when not raw
_CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
             "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
             "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
             "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def request_from_grpc(message: pb.ModelInferRequest) -> Request:
    """The request as the codec reads it; the message's raw bytes are not copied."""
    InferenceServicer.validate_grpc_request(message)     # KServe's checks, with KServe's messages
    raw = message.raw_input_contents
    inputs = []
    for i, t in enumerate(message.inputs):
        tensor = Tensor(t.name, t.datatype, list(t.shape))
        if raw:
            tensor.raw = raw[i]
        elif t.HasField("contents") and t.datatype.upper() in _CONTENTS:
            tensor.data = getattr(t.contents, _CONTENTS[t.datatype.upper()])
        inputs.append(tensor)
    outputs = {o.name: None for o in message.outputs} or None
    return Request(inputs, id=message.id, parameters=message.parameters, outputs=outputs)


def reply_to_grpc(request: Request, outputs: list[Output], model_name: str, version: str) -> pb.ModelInferResponse:
    """Every output as raw_output_contents, as tritonclient and KServe's own client read them."""
    return pb.ModelInferResponse(
        model_name=model_name, model_version=version, id=request.id,
        outputs=[pb.ModelInferResponse.InferOutputTensor(name=o.name, datatype=o.datatype, shape=o.array.shape)
                 for o in outputs],
        raw_output_contents=[o.array.tobytes() for o in outputs])


class LeanServicer(InferenceServicer):
    def __init__(self, data_plane, model_repository_extension, lookup: Callable[[str], Any] | None):
        super().__init__(data_plane, model_repository_extension)
        self._lookup = lookup
        self._kserve_model_infer = _with_kserve_status(super().ModelInfer, "ModelInfer")

    async def ModelInfer(self, request: pb.ModelInferRequest, context) -> pb.ModelInferResponse:
        model = self._lookup(request.model_name) if self._lookup else None
        if model is None:
            return await self._kserve_model_infer(request, context)
        try:
            v2_request = request_from_grpc(request)
            outputs = await model.infer(v2_request, "grpc")
        except InvalidInput as exc:
            await context.abort(StatusCode.INVALID_ARGUMENT, exc.reason)
        except ServingError as exc:
            await context.abort(exc.status_code, exc.details)
        return reply_to_grpc(v2_request, outputs, model.name, model.config.version)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context) -> pb.ModelMetadataResponse:
        """With `versions` (KServe's servicer drops them)."""
        metadata = await self._data_plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(name=metadata["name"], platform=metadata["platform"],
                                        versions=metadata.get("versions", []),
                                        inputs=metadata["inputs"], outputs=metadata["outputs"])


def _with_kserve_status(method, name: str):
    """KServe maps its errors to status codes in an interceptor, which gRPC runs in Python on
    every call of every method (without it ModelInfer served about a quarter more req/s at
    concurrency 64); here the mapping wraps the methods that need it, once."""
    status = ExceptionToStatusInterceptor()

    async def mapped(request, context):
        try:
            return await method(request, context)
        except aio.AbortError:
            raise                                  # already answered with its status
        except Exception as exc:
            await status.handle_exception(exc, request, context, f"/inference.GRPCInferenceService/{name}")
    return mapped


class LeanGRPCServer(GRPCServer):
    """KServe's GRPCServer with the lean servicer, and a log line per call only when asked."""

    def __init__(self, *args, lookup: Callable[[str], Any] | None, log_calls: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._lookup, self._log_calls = lookup, log_calls

    async def start(self, max_workers):
        interceptors = [LoggingInterceptor()] if self._log_calls else []
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers), interceptors=interceptors,
            options=[("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                     ("grpc.max_receive_message_length", self._kwargs.get("grpc_max_receive_message_length"))])
        servicer = LeanServicer(self._data_plane, self._model_repository_extension, self._lookup)
        for name in _OTHER_METHODS:
            setattr(servicer, name, _with_kserve_status(getattr(servicer, name), name))
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._server.add_insecure_port(f"[::]:{self._port}")
        logger.info("Starting gRPC server on port %s (lean ModelInfer: %s)", self._port, self._lookup is not None)
        await self._server.start()
        await self._server.wait_for_termination()
