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
from kserve.model_repository import ModelRepository
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
    if hasattr(value, "int64_param"):  # a gRPC InferParameter
        value = value.int64_param or value.uint64_param
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(f"parameter 'timeout' must be a positive integer of microseconds, got {value!r}")
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
        module = runtime.load_module(self.model_dir, self.config)
        runner = runtime.TorchRunner(module, self.config)
        runtime.warm_up(runner, self.config)
        b = self.config.batching
        if b.enabled:
            self._queue = Batcher(runner, max_batch_size=b.max_batch_size, max_queue_delay=b.max_queue_delay,
                                  max_queue_size=b.max_queue_size, instances=b.instances, observer=self._metrics)
        else:
            self._queue = Unbatched(runner, observer=self._metrics)
        self.ready = True  # only now: loaded and a warm-up forward pass succeeded
        log.info("model %s version %s ready (batching %s)", self.name, self.config.version,
                 "on" if b.enabled else "off")
        return self.ready

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
            response = codec.encode_response(payload, self.config, outputs)
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


class TorchModelRepository(ModelRepository):
    """Backs the V2 repository extension (load/unload): a model loads again from the directory
    it was first served from, or from <models_dir>/<name>/ if that holds a config.yaml."""

    def __init__(self, models_dir: str = "/mnt/models"):
        super().__init__(models_dir)
        self._dirs: dict[str, Path] = {}

    def update(self, model, name: str | None = None) -> None:
        super().update(model, name)
        if isinstance(model, TorchModel):
            self._dirs[name or model.name] = model.model_dir

    def load(self, name: str) -> bool:
        model_dir = self._dirs.get(name, Path(self.models_dir) / name)
        model = TorchModel(model_dir, name=name)
        model.load()
        self.update(model, name)
        return model.ready
