"""The KServe model: load a version, report its metadata, answer V2 inference requests.

predict() only decodes (rejecting bad input alone), hands the rows to the batcher, and
encodes the answer; batching policy lives in batcher.py.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse

from . import codec, runtime
from .batcher import Batcher, Unbatched
from .config import ModelConfig, load_model_config
from .errors import ServingError
from .metrics import CANCELLED, PredictorMetrics

log = logging.getLogger(__name__)
_metrics: PredictorMetrics | None = None


def default_metrics() -> PredictorMetrics:
    global _metrics  # one set of series per process, shared by every model it serves
    if _metrics is None:
        _metrics = PredictorMetrics()
    return _metrics


def _timeout_seconds(parameters: Any) -> float | None:
    """The V2 request parameter `timeout` in microseconds, as Triton and tritonclient use it."""
    if not parameters or "timeout" not in parameters:
        return None
    value = parameters["timeout"]
    shown = repr(value)
    if hasattr(value, "WhichOneof"):   # a gRPC InferParameter: whichever field the client set
        field = value.WhichOneof("parameter_choice")
        value = getattr(value, field) if field else None
        # KServe's InferParameter has bool, int64 and string; Triton's uint64 and double arrive unread
        shown = f"{field} {value!r}" if field else "a uint64 or double parameter, which KServe's protocol does not carry"
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(f"parameter 'timeout' must be a positive integer of microseconds (int64), got {shown}")
    return value / 1e6


class TorchModel(Model):
    def __init__(self, model_dir: Path | str, config: ModelConfig | None = None, *,
                 name: str | None = None, metrics: PredictorMetrics | None = None):
        self.model_dir = Path(model_dir)
        self.config = config or load_model_config(self.model_dir)
        super().__init__(name or self.config.name)
        self._metrics = (metrics or default_metrics()).for_model(self.name, self.config.version)
        self._queue: Batcher | Unbatched | None = None

    def load(self) -> bool:
        device = runtime.resolve_device(self.config.device, self.config.half)
        module = runtime.load_module(self.model_dir, self.config, device)
        runner = runtime.TorchRunner(module, self.config, device)
        runtime.warm_up(runner, self.config)
        b = self.config.batching
        if b.enabled:
            self._queue = Batcher(runner, max_batch_size=b.max_batch_size, max_queue_delay=b.max_queue_delay,
                                  max_queue_size=b.max_queue_size, instances=b.instances,
                                  forward_timeout=b.forward_timeout, observer=self._metrics)
        else:
            self._queue = Unbatched(runner, forward_timeout=b.forward_timeout, observer=self._metrics)
        self.ready = True  # only now: loaded and a warm-up forward pass succeeded
        log.info("model %s version %s ready on %s%s (batching %s)", self.name, self.config.version, device,
                 " in FP16" if self.config.half else "", "on" if b.enabled else "off")
        return self.ready

    async def healthy(self) -> bool:
        """Readiness (KServe's model and server ready endpoints): loaded, and not held by forward
        passes the watchdog gave up on."""
        return self.ready and not (self._queue is not None and self._queue.stuck)

    def get_input_types(self) -> list[dict]:
        return [spec.metadata() for spec in self.config.inputs]

    def get_output_types(self) -> list[dict]:
        return [spec.metadata() for spec in self.config.outputs]

    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        protocol = "grpc" if getattr(payload, "from_grpc", False) else "rest"
        started, code = time.perf_counter(), 500
        try:
            if not isinstance(payload, InferRequest):
                raise InvalidInput("this predictor speaks the V2 inference protocol: POST /v2/models/{name}/infer")
            arrays = codec.decode_request(payload, self.config)
            rows, limit = arrays[0].shape[0], self.config.batching.max_queue_size
            if rows > limit:
                raise InvalidInput(f"the request has {rows} rows; this model accepts at most {limit} per request")
            timeout = _timeout_seconds(payload.parameters) or self.config.batching.request_timeout
            outputs = await self._queue.submit(arrays, timeout)
            response = codec.encode_response(payload, self.config, outputs, self.name)
            code = 200
            return response
        except InvalidInput:
            code = 400
            raise
        except ServingError as exc:
            code = exc.http_status
            raise
        except asyncio.CancelledError:   # the client went away or its gRPC deadline passed
            code = CANCELLED
            raise
        finally:
            self._metrics.request_done(protocol, code, time.perf_counter() - started)

    async def drain(self) -> None:
        """Refuses new requests and returns once every accepted one has been answered."""
        if self._queue is not None:
            await self._queue.drain()

    def stop(self) -> None:
        self.ready = False
