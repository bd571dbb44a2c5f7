"""ASGI middlewares in front of KServe's FastAPI app: body limits, the V2 binary-data rule for
content types, and cancelling requests whose clients went away."""

from __future__ import annotations

import asyncio
import json


class BodyTooLarge(Exception):
    pass


async def read_body(scope, receive, max_bytes: int) -> bytes | None:
    """The whole request body, or None if the client left before sending it; BodyTooLarge if
    it is declared or streamed (chunked) over max_bytes."""
    declared = None
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = value
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"request body of {declared.decode()} bytes exceeds the limit of {max_bytes}")
    message = await receive()
    if message["type"] != "http.request":
        return None
    if not message.get("more_body", False):
        body = message.get("body", b"")  # the common case: one message, no copy
        if len(body) > max_bytes:
            raise BodyTooLarge(f"request body of {len(body)} bytes exceeds the limit of {max_bytes}")
        return body
    parts, size = [message.get("body", b"")], len(message.get("body", b""))
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        parts.append(message.get("body", b""))
        size += len(parts[-1])
        if size > max_bytes:
            raise BodyTooLarge(f"request body of more than {max_bytes} bytes exceeds the limit of {max_bytes}")
        if not message.get("more_body", False):
            return b"".join(parts)


async def body_or_refusal(scope, receive, send, max_bytes: int) -> bytes | None:
    """The whole body; None once a 413 has been sent for it, or if the client left first."""
    try:
        return await read_body(scope, receive, max_bytes)
    except BodyTooLarge as exc:
        await send_json(send, 413, {"error": str(exc)})
        return None


async def send_json(send, status: int, content: dict) -> None:
    body = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuses request bodies over max_bytes with 413, declared or streamed
    (chunked). It reads the whole body before the app runs: raised inside the app's own read,
    FastAPI would turn the refusal into a 400."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await self.app(scope, receive, send)
        body = await body_or_refusal(scope, receive, send, self.max_bytes)
        if body is None:
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the disconnect, if any
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

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
            await body_read.wait()  # from here on the app reads nothing more: listen for the close
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
                raise  # cancelled from outside (shutdown), not by the client
        finally:
            watcher.cancel()
