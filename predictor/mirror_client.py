"""The mirror's HTTP client: one kept-alive HTTP/1.1 connection per worker, responses parsed by
httptools (llhttp, what uvicorn parses requests with).

Measured on this project's 2-core machine against a predictor on loopback, one request at a time
(CPU per request in the sending process, under uvloop as the predictor runs): httpx 1,663 us,
aiohttp 334 us, this 120 us. The mirror runs in
stable's own event loop, so its cost comes straight out of stable's users' latency; at 10%
mirroring httpx cost stable 37% of its throughput (bench/shadow_cost.py).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse

import httptools


class MirrorHTTPError(Exception):
    pass


class _Response(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.body: list[bytes] = []
        self.open = True

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(MirrorHTTPError(f"unreadable HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(MirrorHTTPError("the connection closed before the response"))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class Connection:
    """POSTs to one URL's host, one request at a time; reconnects after any failure."""

    def __init__(self, url: str, host: str | None = None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise MirrorHTTPError(f"not an http(s) URL: {url!r}")
        self.address = (u.hostname, u.port or (443 if u.scheme == "https" else 80))
        self.tls = ssl.create_default_context() if u.scheme == "https" else None
        self.host = host or u.netloc
        self._protocol: _Response | None = None

    async def post(self, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        if self._protocol is None or not self._protocol.open:
            _, self._protocol = await asyncio.wait_for(loop.create_connection(_Response, *self.address, ssl=self.tls), timeout)
        p = self._protocol
        assert p is not None and p.transport is not None
        p.waiter, p.body = loop.create_future(), []
        p.transport.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (path.encode(), self.host.encode(), len(body))
            + body
        )
        late = loop.call_later(timeout, p._fail, MirrorHTTPError(f"no response within {timeout:g}s"))
        try:
            return await p.waiter
        finally:
            late.cancel()

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None
