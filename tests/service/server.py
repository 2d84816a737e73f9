"""Run the real service in a subprocess (uvicorn) for tests that kill it or load it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


class Server:
    """One uvicorn process serving the app from the environment."""

    def __init__(self, env: dict[str, str], workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **env}
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: nobody drains a pipe while the test runs, and a full one blocks the server.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server object

    def start(self, timeout: float = 60.0) -> Server:
        args = [sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory"]
        args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=self.workers > 1,  # its own group, so kill() takes every worker
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not become ready")

    def output(self) -> str:
        """Return what the server has written to stderr so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        """Kill -9: no shutdown hooks run."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(os.getpgid(self.proc.pid), signal.SIGKILL) if self.workers > 1 else self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
