"""A real Prometheus (Debian's package) on a free loopback port, scraping given targets."""
from __future__ import annotations

import shutil
import signal
import ssl
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from harness.processes import ChildProcess, free_port

Target = str | tuple[str, dict[str, str]]      # an address, or one with labels of its own


class PrometheusServer(ChildProcess):
    def __init__(self, targets: list[Target], scrape_interval: str = "1s", jobs: dict[str, dict[str, str]] | None = None,
                 web_config: dict | None = None):
        """targets: addresses, or (address, labels): a target's own labels, as Kubernetes service
        discovery adds a pod's (its revision); jobs: scrape the targets once per job, each adding
        its labels (`namespace`); default one job, no labels. web_config: Prometheus's
        --web.config.file (tls_server_config: it serves https)."""
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        super().__init__(self.dir / "log")
        self.targets = [t if isinstance(t, tuple) else (t, {}) for t in targets]
        self.jobs = jobs or {"predictors": {}}
        self.scrape_interval = scrape_interval
        self.web_config = web_config
        self.port = free_port()

    @property
    def url(self) -> str:
        scheme = "https" if self.web_config and "tls_server_config" in self.web_config else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _static_configs(self, labels: dict[str, str]) -> list[dict]:
        groups: dict[tuple, list[str]] = {}
        for address, own in self.targets:
            groups.setdefault(tuple(sorted({**labels, **own}.items())), []).append(address)
        return [{"targets": addresses, "labels": dict(key)} for key, addresses in groups.items()]

    def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        unverified = ssl._create_unverified_context()     # readiness of our own server only; tests verify
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}; log: {self.dir / 'log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1, context=unverified) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                if getattr(exc, "code", None) == 401:
                    return                                 # up, and asking for what the web config says
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready after {timeout}s; log: {self.dir / 'log'}")

    def command(self) -> list[str]:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `bash .ci/setup` (Debian package prometheus)")
        config = {"global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
                  "scrape_configs": [{"job_name": job, "static_configs": self._static_configs(labels)}
                                     for job, labels in self.jobs.items()]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        web = []
        if self.web_config:
            (self.dir / "web.yml").write_text(yaml.safe_dump(self.web_config))
            web = [f"--web.config.file={self.dir / 'web.yml'}"]
        return [binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", *web]

    def outage(self) -> None:
        """Stopped with its data kept: start() again serves the same port and the same history."""
        super().stop()

    def stop(self, timeout: float | None = None, sig: int = signal.SIGTERM) -> None:
        super().stop(timeout, sig)
        shutil.rmtree(self.dir, ignore_errors=True)
