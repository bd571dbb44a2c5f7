"""The kubelet's part in the shadow step, on loopback. In a cluster every pod of an
InferenceService mounts the optional ConfigMap modelrollout-shadow (the shipped ServingRuntimes'
volume, at the path their SHADOW_CONFIG names: tests/controlplane/test_shadow_mount.py checks
that on the real KServe and Knative), and the kubelet keeps the mounted file in step with the
ConfigMap's key. Here the pods' containers are local predictor processes, so this stand-in copies
the InferenceService's key into every predictor's --shadow_config file, and empties them when the
key goes. The file's sourceVersion keeps the mirror in stable's process, as in a cluster.

It reads the ConfigMap every half second (a kubelet syncs mounted ConfigMaps within about a
minute; the operator's shadow step counts from when it wrote the key, so a late copy only delays
the first pairs) and stops with the stack.
"""
from __future__ import annotations

import threading
from pathlib import Path

import kubernetes

CONFIG_MAP = "modelrollout-shadow"
PERIOD = 0.5


class MirrorSync:
    def __init__(self, kubeconfig: Path, namespace: str, isvc: str, files: list[Path]):
        self.core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(str(kubeconfig)))
        self.namespace, self.key, self.files = namespace, f"{isvc}.yaml", files
        self.copied: list[str] = []            # each distinct content written, for the scenarios
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mirror-sync", daemon=True)

    def _read(self) -> str:
        try:
            data = self.core.read_namespaced_config_map(CONFIG_MAP, self.namespace, _request_timeout=5).data or {}
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return ""
            raise
        return data.get(self.key, "")

    def _write(self, text: str) -> None:
        for path in self.files:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)                   # whole, as the kubelet swaps a projected volume's files
        self.copied.append(text)

    def _run(self) -> None:
        current = None
        while not self._stop.wait(PERIOD):
            try:
                text = self._read()
            except Exception:                   # the apiserver briefly away: keep the last copy
                continue
            if text != current:
                self._write(text)
                current = text

    def __enter__(self) -> "MirrorSync":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self._write("")                          # the next scenario's predictors start with the mirror off
