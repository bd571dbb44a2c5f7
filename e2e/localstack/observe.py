"""Watching the control plane through real kubectl: recording every version of an object,
reading events and status. `api` is a kubectl view of one namespace (controlplane.kubernetes.Namespaced)."""
from __future__ import annotations

import json
import subprocess
import threading


class Recorder:
    """`kubectl get RESOURCE NAME -w -o json`: every version of one object, in order."""

    def __init__(self, api, resource: str, name: str):
        self.proc = subprocess.Popen(api.command("get", resource, name, "-w", "-o", "json", "--output-watch-events=false"),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


def events_of(api, name: str, kind: str = "ModelRollout") -> list[dict]:
    """The Events about one object, oldest first (KServe's and Knative's own about the
    InferenceService of the same name are kind InferenceService)."""
    items = json.loads(api.kubectl("get", "events", "-o", "json").stdout)["items"]   # listed by name, not time
    items.sort(key=lambda e: e.get("eventTime") or e.get("firstTimestamp") or e["metadata"]["creationTimestamp"])
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name
            and e["involvedObject"].get("kind") == kind]


def get(api, resource: str, name: str) -> dict:
    return json.loads(api.kubectl("get", resource, name, "-o", "json").stdout)


def status_of(api, name: str = "cancer") -> dict:
    return get(api, "mro", name).get("status") or {}


def phase_in(api, *phases, name: str = "cancer"):
    """A wait_for condition: the rollout's status once its phase is one of `phases`."""
    return lambda: (lambda s: s if s.get("phase") in phases else None)(status_of(api, name))
