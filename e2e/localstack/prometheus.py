"""A real Prometheus (Debian's package) on a free loopback port, scraping given targets."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from predictor.testing import free_port, wait_until_answers


class PrometheusServer:
    def __init__(self, targets: list[str], scrape_interval: str = "1s", jobs: dict[str, dict[str, str]] | None = None):
        """jobs: scrape the targets once per job, each adding its labels (as Kubernetes service
        discovery adds `namespace`); default one job, no labels."""
        self.targets = targets
        self.jobs = jobs or {"predictors": {}}
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "PrometheusServer":
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `bash .ci/setup` (Debian package prometheus)")
        config = {"global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": self.targets, "labels": labels}]}
                                     for job, labels in self.jobs.items()]}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=open(self.dir / "log", "ab"), stderr=subprocess.STDOUT)
        wait_until_answers(f"{self.url}/-/ready", self.proc, "prometheus", self.dir / "log", timeout=30)
        return self

    def stop(self, keep_data: bool = False) -> None:
        """keep_data: an outage; start() again serves the same port and the same history."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PrometheusServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
