"""The KServe model: load a version, report its metadata, answer V2 inference requests.

infer() is the one core every protocol path calls (lean REST, gRPC, and KServe's own through
predict()): it decodes (rejecting bad input alone), hands the rows to the batcher, picks the
outputs, and counts the request; batching policy lives in batcher.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse, RequestedOutput

from . import codec, kserve_seam, runtime, v2
from .batcher import Batcher, Unbatched
from .config import ModelConfig, load_model_config
from .errors import InvalidInput, ServingError
from .metrics import CANCELLED, PredictorMetrics
from .mirror import Mirror

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
    if hasattr(value, "WhichOneof"):  # a gRPC InferParameter: whichever field the client set
        field = value.WhichOneof("parameter_choice")
        value = getattr(value, field) if field else None
        # KServe's InferParameter has bool, int64 and string; Triton's uint64 and double arrive unread
        shown = f"{field} {value!r}" if field else "a uint64 or double parameter, which KServe's protocol does not carry"
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(f"parameter 'timeout' must be a positive integer of microseconds (int64), got {shown}")
    return value / 1e6


class TorchModel(Model):
    def __init__(
        self,
        model_dir: Path | str,
        config: ModelConfig | None = None,
        *,
        name: str | None = None,
        metrics: PredictorMetrics | None = None,
        shadow_config: str | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.config = config or load_model_config(self.model_dir)
        super().__init__(name or self.config.name)
        self._metrics = (metrics or default_metrics()).for_model(self.name, self.config.version)
        self._counted = [(i, o.name, o.predictions) for i, o in enumerate(self.config.outputs) if o.predictions]
        for _, output, spec in self._counted:
            self._metrics.count_predictions(output, spec.bins)
        self._queue: Batcher | Unbatched | None = None
        # shadow_config: the mirror's file (mirror.py); the mirror is off while it is absent or empty
        self._mirror = None
        if shadow_config:
            self._metrics.count_shadow(tuple(o.name for o in self.config.outputs))
            self._mirror = Mirror(shadow_config, self.name, self.config.version, self.config.inputs, self.config.outputs, self._metrics)

    def load(self) -> bool:
        device = runtime.resolve_device(self.config.device, self.config.half)
        module = runtime.load_module(self.model_dir, self.config, device)
        runner = runtime.TorchRunner(module, self.config, device)
        runtime.warm_up(runner, self.config)
        b = self.config.batching
        if b.enabled:
            self._queue = Batcher(
                runner,
                max_batch_size=b.max_batch_size,
                max_queue_delay=b.max_queue_delay,
                max_queue_size=b.max_queue_size,
                instances=b.instances,
                forward_timeout=b.forward_timeout,
                observer=self._metrics,
            )
        else:
            self._queue = Unbatched(runner, forward_timeout=b.forward_timeout, observer=self._metrics)
        self.ready = True  # only now: loaded and a warm-up forward pass succeeded
        log.info(
            "model %s version %s ready on %s%s (batching %s)",
            self.name,
            self.config.version,
            device,
            " in FP16" if self.config.half else "",
            "on" if b.enabled else "off",
        )
        return self.ready

    async def healthy(self) -> bool:
        """Readiness (KServe's model and server ready endpoints): loaded, and not held by forward
        passes the watchdog gave up on."""
        return self.ready and not (self._queue is not None and self._queue.stuck)

    def get_input_types(self) -> list[dict]:
        return [spec.metadata() for spec in self.config.inputs]

    def get_output_types(self) -> list[dict]:
        return [spec.metadata() for spec in self.config.outputs]

    async def infer(self, request: v2.Request, protocol: str) -> list[v2.Output]:
        """The request's outputs, or InvalidInput / a ServingError; counted under `protocol`
        with its status (499 when the caller went away)."""
        started, code = time.perf_counter(), 500
        try:
            arrays = codec.decode_request(request, self.config)
            rows, limit = arrays[0].shape[0], self.config.batching.max_queue_size
            if rows > limit:
                raise InvalidInput(f"the request has {rows} rows; this model accepts at most {limit} per request")
            timeout = _timeout_seconds(request.parameters) or self.config.batching.request_timeout
            assert self._queue is not None, "load() first"  # the server serves a model only once loaded
            answered = await self._queue.submit(arrays, timeout)
            outputs = codec.select_outputs(request, self.config, answered)
            for i, output, spec in self._counted:
                self._metrics.predicted(output, spec.counts(answered[i]))
            if self._mirror is not None:
                self._mirror.offer(arrays, answered)
            code = 200
            return outputs
        except InvalidInput:
            code = 400
            raise
        except ServingError as exc:
            code = exc.http_status
            raise
        except asyncio.CancelledError:  # the client went away or its gRPC deadline passed
            code = CANCELLED
            raise
        finally:
            self._metrics.request_done(protocol, code, time.perf_counter() - started)

    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        """KServe's path (with --lean_path false, and for any caller of KServe's data plane)."""
        if not isinstance(payload, InferRequest):
            raise InvalidInput("this predictor speaks the V2 inference protocol: POST /v2/models/{name}/infer")
        request = _from_kserve(payload)
        outputs = await self.infer(request, "grpc" if payload.from_grpc else "rest")
        return _to_kserve(payload, outputs, self.name, self.config.version)

    async def drain(self) -> None:
        """Refuses new requests and returns once every accepted one has been answered."""
        if self._queue is not None:
            await self._queue.drain()
        if self._mirror is not None:
            await self._mirror.close()

    def stop(self) -> None:
        self.ready = False


def _from_kserve(payload: InferRequest) -> v2.Request:
    outputs = None
    if payload.request_outputs:
        outputs = {o.name: o.binary_data for o in payload.request_outputs}
    return v2.Request(
        inputs=[v2.Tensor(i.name, i.datatype, i.shape, i.data, kserve_seam.raw_data(i)) for i in payload.inputs or []],
        id=payload.id or "",
        parameters=payload.parameters or {},
        outputs=outputs,
        binary_output=bool(payload.use_binary_outputs),
    )


def _to_kserve(payload: InferRequest, outputs: list[v2.Output], model_name: str, version: str) -> InferResponse:
    infer_outputs = []
    for out in outputs:
        infer_output = InferOutput(name=out.name, shape=list(out.array.shape), datatype=out.datatype)
        infer_output.set_data_from_numpy(out.array, binary_data=out.binary)
        infer_outputs.append(infer_output)
    return InferResponse(
        response_id=payload.id or "",
        model_name=model_name,
        model_version=version,
        infer_outputs=infer_outputs,
        from_grpc=payload.from_grpc,
        use_binary_outputs=bool(payload.use_binary_outputs),
        # KServe's REST encoder reads each output's binary flag from these
        requested_outputs=None if payload.from_grpc else [RequestedOutput(o.name, {"binary_data": o.binary}) for o in outputs],
    )
