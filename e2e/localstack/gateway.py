"""The ingress on loopback: what Kourier or Istio's gateway does in a cluster, for the requests
the operator itself sends (the evaluation step's). Each request goes to the backend of the split
Knative's KIngress gives its Host header, so a tagged host (`latest-...`, `prev-...`) reaches its
revision alone. The operator is pointed at it by spec.evaluation.gateway.

Only 127.0.0.1; stops with the stack.
"""
from __future__ import annotations

import http.client
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Split = Callable[[str], list[tuple[str, int]]]     # host -> [(storageUri, percent)]


class Gateway:
    def __init__(self, split: Split, backends: dict[str, tuple[str, str]]):
        """backends: storageUri -> (version, 'host:port' of its predictor's REST endpoint)."""
        self.split, self.backends = split, backends
        self.routed: list[tuple[str, str]] = []          # (host, version) per request, for the tests
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                gateway.forward(self)

            do_GET = do_POST

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, request: BaseHTTPRequestHandler) -> None:
        host = (request.headers.get("Host") or "").split(":")[0]
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        split = [(uri, pct) for uri, pct in self.split(host) if pct > 0 and uri in self.backends]
        if not split:
            status, payload, kind = 404, f"no route for host {host!r}".encode(), "text/plain"
        else:
            version, address = self.backends[random.choices([u for u, _ in split], [p for _, p in split])[0]]
            self.routed.append((host, version))
            connection = http.client.HTTPConnection(address, timeout=30)
            try:
                connection.request(request.command, request.path, body or None,
                                   {"Content-Type": request.headers.get("Content-Type") or "application/json"})
                response = connection.getresponse()
                status, payload, kind = response.status, response.read(), response.getheader("Content-Type") or ""
            finally:
                connection.close()
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    def __enter__(self) -> "Gateway":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
