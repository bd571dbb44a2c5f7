"""A real HTTP server on 127.0.0.1 standing where webhooks and Slack/Teams URLs point: it keeps
every POST (path and JSON body) and answers each path as the test says (a status, or a delay
past the caller's timeout)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HookServer:
    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        self.answers: dict[str, int] = {}          # path -> HTTP status (default 200)
        self.delays: dict[str, float] = {}         # path -> seconds before answering
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with owner._lock:
                    owner.received.append((self.path, body))
                    code, delay = owner.answers.get(self.path, 200), owner.delays.get(self.path, 0.0)
                time.sleep(delay)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "HookServer":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, code: int) -> None:
        with self._lock:
            self.answers[path] = code

    def posts(self, path: str) -> list[dict]:
        with self._lock:
            return [body for p, body in self.received if p == path]
