"""Upstream binaries as child processes: started with a log file each, stopped by their own PID."""
from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

from harness.processes import ChildProcess, wait_for  # noqa: F401  (wait_for: e2e's one poller)


class Daemon(ChildProcess):
    stop_timeout = 10.0

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None):
        self.log = Path(log_dir) / f"{name}.log"
        super().__init__(self.log, env)
        self.name, self.argv = name, [str(a) for a in argv]

    def command(self) -> list[str]:
        return self.argv

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log {self.log}:\n" + "\n".join(tail))

    def wait_healthy(self, url: str, ca: Path | None = None, timeout: float = 60.0) -> None:
        """Poll url (http, or https trusting ca) until it answers 200, failing at once if the process exits."""
        context = ssl.create_default_context(cafile=str(ca)) if ca else None

        def answers() -> bool:
            self.check()
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as r:
                    return r.status == 200
            except OSError:
                return False
        wait_for(answers, timeout, f"{self.name} at {url} (log {self.log})", interval=0.2)
