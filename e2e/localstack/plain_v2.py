"""A V2 inference server that is not this project's predictor (no predictor_* series, no
batching): what a KServe user's own runtime looks like to the operator. Standard library only.

    python -m e2e.localstack.plain_v2 --port 8080 --model cancer --fail-every 50 --delay 0.002

Every `--fail-every`-th inference answers 500 (0: none), so tests know the exact error count;
`--delay` seconds per inference.
"""
from __future__ import annotations

import argparse
import itertools
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def handler(model: str, fail_every: int, delay: float):
    counter, lock = itertools.count(1), threading.Lock()

    class V2(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()             # headers and body are two writes: no Nagle wait between them
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path in ("/v2/health/ready", "/v2/health/live", f"/v2/models/{model}/ready"):
                return self._reply(200, {"ready": True})
            if self.path == f"/v2/models/{model}":
                return self._reply(200, {"name": model, "platform": "plain-v2", "inputs": [], "outputs": []})
            self._reply(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path != f"/v2/models/{model}/infer":
                return self._reply(404, {"error": f"no route {self.path}"})
            with lock:
                n = next(counter)
            time.sleep(delay)
            if fail_every and n % fail_every == 0:
                return self._reply(500, {"error": "model failed"})
            rows = (body.get("inputs") or [{}])[0].get("shape", [1])[0]
            self._reply(200, {"model_name": model, "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [rows, 2], "data": [0.5] * (2 * rows)}]})

        def log_message(self, *args) -> None:
            pass

    return V2


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--model", default="cancer")
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    a = p.parse_args()
    ThreadingHTTPServer(("127.0.0.1", a.port), handler(a.model, a.fail_every, a.delay)).serve_forever()


if __name__ == "__main__":
    main()
