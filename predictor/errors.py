"""Errors the predictor raises while serving, each with its HTTP status and gRPC code.

They subclass grpc_interceptor's GrpcException, so KServe's gRPC interceptor turns them into
their status code; server.py registers one REST handler that turns them into `http_status`.
"""

from grpc import StatusCode
from grpc_interceptor.exceptions import GrpcException


class ServingError(GrpcException):
    http_status = 500
    status_code = StatusCode.INTERNAL

    def __init__(self, details: str):
        super().__init__(details=details)

    def __str__(self) -> str:
        return self.details


class InvalidInput(ServingError):
    """The request is not one this model accepts; the message names the problem."""

    http_status = 400
    status_code = StatusCode.INVALID_ARGUMENT


class QueueFull(ServingError):
    """The bounded request queue is full: rejected at once, the client may retry later."""

    http_status = 429
    status_code = StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(ServingError):
    """The request's deadline passed before its batch could run; it never reached the model."""

    http_status = 504
    status_code = StatusCode.DEADLINE_EXCEEDED


class Draining(ServingError):
    """The server is shutting down and accepts no new work."""

    http_status = 503
    status_code = StatusCode.UNAVAILABLE


class ModelFailed(ServingError):
    """The model raised while running the batch this request was part of."""

    http_status = 500
    status_code = StatusCode.INTERNAL


class ForwardTimeout(ModelFailed):
    """The forward pass of this request's batch outlived the watchdog (forward_timeout_ms)."""


class RepositoryDisabled(ServingError):
    """Load and unload were asked of a server started without --enable_repository."""

    http_status = 403
    status_code = StatusCode.PERMISSION_DENIED
