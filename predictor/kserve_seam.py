"""Every use the predictor makes of KServe's insides (kserve==0.21.0, pinned), one small function
each, so that an upgrade renaming one fails tests/predictor/test_kserve_seam.py, which checks each
name on the pinned kserve, instead of the server at start-up. Nothing else in predictor/ reads a
private KServe name; codec, rest, v2 and the batcher import nothing of KServe at all.
"""

from __future__ import annotations

from typing import Any

from kserve import errors as kserve_errors
from kserve import model_server as kserve_model_server
from kserve.protocol.grpc.servicer import InferenceServicer

from .errors import InvalidInput


def rest_app() -> Any:
    """The FastAPI app KServe's REST server serves (a module global of kserve.model_server)."""
    return kserve_model_server.app


def parsed_args() -> Any:
    """The command line KServe parsed when kserve.model_server was imported (its gRPC server
    reads its message limits there)."""
    return kserve_model_server.args


def model_registry(dataplane: Any) -> Any:
    """The ModelRepository a DataPlane answers from."""
    return dataplane._model_registry


def uvicorn_server(model_server: Any) -> Any | None:
    """The uvicorn Server under KServe's REST server, once start() has built it."""
    rest = model_server._rest_server
    return None if rest is None else rest._server


def serve_asgi_app(model_server: Any, app: Any) -> None:
    """Has KServe's REST server serve `app` in place of its FastAPI app (before it serves)."""
    model_server._rest_server.config.app = app


def take_over_grpc(model_server: Any) -> bool:
    """Whether gRPC was asked for; KServe's start() builds its own gRPC server unless this unsets it."""
    asked = bool(model_server.enable_grpc)
    model_server.enable_grpc = False
    return asked


def set_grpc_server(model_server: Any, server: Any) -> None:
    """Our gRPC server in KServe's slot, so that its stop() reaches it."""
    model_server._grpc_server = server


def grpc_server(model_server: Any) -> Any | None:
    return model_server._grpc_server


def raw_data(infer_input: Any) -> bytes | None:
    """An InferInput's raw bytes as KServe decoded them from a binary request (no public accessor)."""
    return infer_input._raw_data


def validate_grpc_request(message: Any) -> None:
    """KServe's own checks of a ModelInferRequest, with its messages, raised as our InvalidInput."""
    try:
        InferenceServicer.validate_grpc_request(message)
    except kserve_errors.InvalidInput as exc:
        raise InvalidInput(str(exc)) from None
