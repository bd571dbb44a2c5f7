"""Watching the emulated cluster through real kubectl: waiting on conditions, recording every
version of an object, reading events."""
from __future__ import annotations

import json
import subprocess
import threading
import time

from .apiserver import KUBECTL


def wait_for(condition, timeout=60.0, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Recorder:
    """`kubectl get RESOURCE NAME -w -o json`: every version of one object, in order."""

    def __init__(self, api, resource: str, name: str):
        self.proc = subprocess.Popen([str(KUBECTL), "get", resource, name, "-w", "-o", "json", "--output-watch-events=false"],
                                     env=api.env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.versions: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buffer += line
            try:
                obj, end = decoder.raw_decode(buffer.strip())
            except ValueError:
                continue
            buffer = ""
            if not self.versions or self.versions[-1] != obj:
                self.versions.append(obj)

    def stop(self) -> list[dict]:
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)
        return self.versions


def events_of(api, name: str) -> list[dict]:
    items = json.loads(api.kubectl("get", "events", "-o", "json").stdout)["items"]
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name]


def get(api, resource: str, name: str) -> dict:
    return json.loads(api.kubectl("get", resource, name, "-o", "json").stdout)


def status_of(api, name: str = "cancer") -> dict:
    return get(api, "mro", name).get("status") or {}
