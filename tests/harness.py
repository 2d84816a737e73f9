"""Private processes for tests and benchmarks: a free port, a private redis-server, the service.

Everything listens on 127.0.0.1 and runs in its own process group, so that a test or a benchmark
may kill -9, pause or restart it without touching anything it did not start. Benchmarks import this
module too (``benchmarks/reliability/common.py``), so it imports nothing of pytest nor of the tests.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import redis

__all__ = ["HOST", "ORDERLIFT", "PrivateRedis", "Server", "free_port"]

HOST = "127.0.0.1"
ORDERLIFT = Path(sys.executable).with_name("orderlift")  # the command of this environment

logger = logging.getLogger(__name__)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """Run a private redis-server on its own port, that may be paused, killed -9 and restarted.

    No persistence unless ``aof``: then every write is fsynced (``appendfsync always``) to an AOF in
    ``workdir``, which a restart on the same port replays; without it a restart comes up empty.
    """

    def __init__(self, workdir: Path, port: int | None = None, aof: bool = False) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.aof = aof
        self.url = f"redis://{HOST}:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start redis-server on ``self.port`` and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        durable = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]
        args = [binary, "--port", str(self.port), "--bind", HOST, "--save", "", *durable]
        self.proc = subprocess.Popen(
            [*args, "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis(host=HOST, port=self.port, socket_connect_timeout=0.2, socket_timeout=0.2)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def pause(self) -> None:
        """Freeze this redis-server (SIGSTOP): it keeps its port and sockets but answers nothing."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw this redis-server (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """Kill this redis-server with SIGKILL (only the one started here) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def _signal(self, signum: signal.Signals) -> None:
        if self.proc is None:
            raise RuntimeError(f"redis-server on port {self.port} is not running")
        self.proc.send_signal(signum)


class Server:
    """Run ``orderlift serve`` on a free port of 127.0.0.1, in its own process group, logging to a file.

    ``env`` is added to this process's environment (with one BLAS thread). The server runs in
    ``workdir`` and logs (stdout and stderr) to ``workdir/<name>.log``; without a ``workdir`` both
    live in a temporary directory that goes with this object. ``--local-workers`` is always passed:
    several workers without Redis are run (and measured) as such. ``keep_log_in``: a directory that
    :meth:`stop` copies the log into (a benchmark's ``workdir`` is gone when it ends).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        workdir: Path | None = None,
        *,
        workers: int = 1,
        name: str = "server",
        keep_log_in: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **env}
        self.workers = workers
        self.name = name
        self.keep_log_in = keep_log_in
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:  # removed with this object (or at exit)
            self._scratch = tempfile.TemporaryDirectory(prefix="orderlift-server-")
            workdir = Path(self._scratch.name)
        self.workdir = workdir
        self.log = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> Server:
        """Start the server and wait until every worker started and /readyz answers 200."""
        args = [str(ORDERLIFT), "serve", "--host", HOST, "--port", str(self.port)]
        args += ["--workers", str(self.workers), "--local-workers"]
        # A file, not a pipe: nobody drains a pipe while the server runs, and a full one blocks it.
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            started = self.output().count("Application startup complete")
            if started >= self.workers and _status(f"{self.url}/readyz") == 200:
                logger.info("%s ready on %s (pid %d)", self.name, self.url, self.proc.pid)
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.output()[-3000:]
                exited = self.proc.poll()
                self.stop()
                why = "did not become ready" if exited is None else f"exited ({exited})"
                raise RuntimeError(f"{self.name} {why}:\n{tail}")
            time.sleep(0.1)

    def output(self) -> str:
        """Return what the server has logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def worker_pids(self) -> list[int]:
        """Return the pids that serve requests (the main process itself with one worker)."""
        if self.proc is None:
            return []
        if self.workers == 1:
            return [self.proc.pid]
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:  # ppid
                    pids.append(int(stat.parent.name))
        return sorted(pids)

    def cpu_seconds(self) -> dict[int, float]:
        """Return user + system CPU seconds of each worker pid so far."""
        out = {}
        for pid in self.worker_pids():
            with suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def kill(self) -> None:
        """Kill the process group with SIGKILL: no shutdown hook runs."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """Send SIGTERM to the process group, SIGKILL after 15 s; copy the log into ``keep_log_in``."""
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        if self.keep_log_in is not None:
            with suppress(OSError):
                self.keep_log_in.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log, self.keep_log_in / self.log.name)

    @contextmanager
    def running(self) -> Iterator[Server]:
        """Start, yield, and always stop."""
        try:
            yield self.start()
        finally:
            self.stop()


def _status(url: str) -> int:
    """Return the status of a GET of ``url``, 0 when nothing answered."""
    try:
        return httpx.get(url, timeout=2.0).status_code
    except httpx.HTTPError:
        return 0
