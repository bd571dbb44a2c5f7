"""The lean REST path: `POST /v2/models/{name}[/versions/{v}]/infer` as raw ASGI, in front of
KServe's FastAPI app.

FastAPI's routing, pydantic's model of the request, KServe's InferRequest (which turns binary
inputs into Python lists) and its response encoder cost far more CPU per request than the model
does. Here the body goes from orjson straight into numpy (binary inputs by np.frombuffer, no
copy), through the same codec and batcher as every other path, and the answer is serialized
once from the arrays. Everything else (health, metadata, repository, a model that is not ours
or not ready) falls through to KServe unchanged.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable

import orjson

from .errors import InvalidInput, ServingError
from .middleware import body_or_refusal, send_json
from .v2 import Output, Request, Tensor

_INFER = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$")
_NOT_V2 = "the request body is not a V2 inference request: "


def _get(obj: dict, key: str, kind: type | tuple, where: str, required: bool = False) -> Any:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{_NOT_V2}{where}{key}: Field required")
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names: dict[Any, str] = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer"}
        raise InvalidInput(f"{_NOT_V2}{where}{key}: should be {names.get(kind, kind)}, got {value!r:.40}")
    return value


def parse_request(body: bytes, header_length: int | None) -> Request:
    """A V2 REST request: all JSON, or (binary-data extension) a JSON header of `header_length`
    bytes followed by each binary input's `binary_data_size` bytes, in input order."""
    header = body if header_length is None else body[:header_length]
    if header_length is not None and not 0 < header_length <= len(body):
        raise InvalidInput(f"Inference-Header-Content-Length {header_length} is outside the {len(body)}-byte body")
    try:
        doc = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{_NOT_V2}JSON decode error at character {exc.pos}: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{_NOT_V2}body: should be an object, got {type(doc).__name__}")
    tail = memoryview(body)[len(header) :]
    used = 0
    inputs = []
    for i, item in enumerate(_get(doc, "inputs", list, "", required=True)):
        where = f"inputs.{i}."
        if not isinstance(item, dict):
            raise InvalidInput(f"{_NOT_V2}inputs.{i}: should be an object")
        params = _get(item, "parameters", dict, where) or {}
        tensor = Tensor(
            _get(item, "name", str, where, True), _get(item, "datatype", str, where, True), _get(item, "shape", list, where, True), item.get("data")
        )
        size = params.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0 or tensor.data is not None:
                raise InvalidInput(f"input '{tensor.name}': binary_data_size must be a non-negative integer, given instead of data, not beside it")
            if used + size > len(tail):
                raise InvalidInput(
                    f"input '{tensor.name}': binary_data_size {size} runs past the end of the body ({len(tail) - used} binary bytes left)"
                )
            tensor.raw, used = tail[used : used + size], used + size
        elif tensor.data is None:
            raise InvalidInput(f"input '{tensor.name}': no data (neither `data` nor a binary_data_size)")
        inputs.append(tensor)
    if used != len(tail):
        raise InvalidInput(f"the body has {len(tail)} bytes after its JSON header, but the inputs' binary_data_size add up to {used}")
    outputs = None
    for i, item in enumerate(_get(doc, "outputs", list, "") or []):
        if not isinstance(item, dict):
            raise InvalidInput(f"{_NOT_V2}outputs.{i}: should be an object")
        own = (_get(item, "parameters", dict, f"outputs.{i}.") or {}).get("binary_data")
        outputs = outputs or {}
        outputs[_get(item, "name", str, f"outputs.{i}.", True)] = None if own is None else bool(own)
    parameters = _get(doc, "parameters", dict, "") or {}
    return Request(
        inputs, id=str(doc.get("id") or ""), parameters=parameters, outputs=outputs, binary_output=bool(parameters.get("binary_data_output", False))
    )


def encode_reply(request: Request, outputs: list[Output], model_name: str, version: str) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    described, tail = [], []
    for out in outputs:
        item: dict[str, Any] = {"name": out.name, "datatype": out.datatype, "shape": list(out.array.shape)}
        if out.binary:
            item["parameters"] = {"binary_data_size": out.array.nbytes}
            tail.append(out.array.data)
        else:
            item["data"] = out.array.reshape(-1)  # orjson writes the ndarray itself, flat
        described.append(item)
    doc = {"model_name": model_name, "model_version": version, "outputs": described}
    if request.id:
        doc["id"] = request.id
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not tail:
        return header, None
    return b"".join([header, *tail]), len(header)


class LeanInfer:
    """ASGI middleware: serves inference for the models `lookup` returns (ready TorchModels);
    everything else goes on to `app`. A client that disconnects cancels its request, which
    the model counts as 499 and which leaves the batcher's queue."""

    def __init__(self, app, lookup: Callable[[str], Any], max_body_bytes: int):
        self.app, self.lookup, self.max_body_bytes = app, lookup, max_body_bytes

    async def __call__(self, scope, receive, send):
        match = _INFER.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        model = self.lookup(match.group(1)) if match else None
        if model is None:
            return await self.app(scope, receive, send)
        body = await body_or_refusal(scope, receive, send, self.max_body_bytes)
        if body is None:
            return
        try:
            request = parse_request(body, _header_length(scope))
            outputs = await _cancel_on_disconnect(model.infer(request, "rest"), receive)
        except InvalidInput as exc:
            return await send_json(send, 400, {"error": str(exc)})
        except ServingError as exc:
            return await send_json(send, exc.http_status, {"error": str(exc)})
        except _ClientLeft:
            return
        reply, header_length = encode_reply(request, outputs, model.name, model.config.version)
        headers = [
            (b"content-type", b"application/json" if header_length is None else b"application/octet-stream"),
            (b"content-length", str(len(reply)).encode()),
        ]
        if header_length is not None:
            headers.append((b"inference-header-content-length", str(header_length).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": reply})


def _header_length(scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"inference-header-content-length":
            if not value.isdigit():
                raise InvalidInput(f"Inference-Header-Content-Length {value.decode(errors='replace')!r} is not a number")
            return int(value)
    return None


class _ClientLeft(Exception):
    pass


async def _cancel_on_disconnect(work, receive):
    """Runs `work` in this task; a disconnect (the only message left once the body is read)
    cancels it. uvicorn tells a request of its client leaving only if it asks."""
    task = asyncio.current_task()
    left = False

    async def watch():
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass
        left = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if left:
            task.uncancel()
            raise _ClientLeft() from None
        raise  # cancelled from outside (shutdown), not by the client
    finally:
        watcher.cancel()
