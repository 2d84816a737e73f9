"""Worker processes that each listen on their own socket of one port (SO_REUSEPORT).

uvicorn's workers share one listening socket, and the worker that wakes first accepts a whole
burst of new connections. Storefronts keep connections alive in a pool, so one worker can end up
serving nearly every connection while the others idle (measured here: 6,100 instead of 11,800
req/s in one run of four). Each worker here binds its own socket with SO_REUSEPORT, and the
kernel spreads connections over them by a hash of their addresses.

The supervisor first binds the port without SO_REUSEPORT (so a port that anything holds fails at
once), then holds a bound socket for the workers to join (port 0 thus picks one port for all). It
restarts a worker that dies, gives up when workers keep dying right after they start, and stops
them all on SIGINT or SIGTERM; a worker whose supervisor is gone stops by itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

__all__ = ["WorkersFailed", "run_workers"]

logger = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0
EARLY_DEATH_S = 5.0  # a worker that dies sooner than this after starting counts as failing to start
MAX_EARLY_DEATHS = 5
STOP_TIMEOUT_S = 30.0


class WorkersFailed(RuntimeError):
    """Workers keep dying as soon as they start (a bad setting, a broken model path)."""


def _listener(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    """Return a TCP socket bound to (host, port); with ``reuse_port`` other processes may bind too."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _exit_with_parent() -> None:
    """Stop this worker gracefully (SIGTERM to itself) once its supervisor is gone."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os.kill(os.getpid(), signal.SIGTERM)


def _worker(app: str, host: str, port: int, factory: bool) -> None:
    """Serve ``app`` on this process's own socket until told to stop."""
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    config = uvicorn.Config(app, factory=factory, host=host, port=port, log_config=None, access_log=False)
    uvicorn.Server(config).run(sockets=[_listener(host, port)])


def run_workers(app: str, host: str, port: int, workers: int, factory: bool = False) -> None:
    """Serve ``app`` (an import string) from ``workers`` processes until SIGINT or SIGTERM.

    Raises OSError when the port cannot be bound and WorkersFailed when workers die at start.
    """
    if workers == 1 or not hasattr(socket, "SO_REUSEPORT"):  # one process: serve it here
        uvicorn.run(app, factory=factory, host=host, port=port, log_config=None, access_log=False)
        return
    with _listener(host, port, reuse_port=False) as probe:  # fails if anything holds the port
        port = probe.getsockname()[1]
    held = _listener(host, port)  # never listens: it keeps the port for the workers
    spawn = multiprocessing.get_context("spawn")
    stopping = []

    def halt(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)  # a plain list: no lock a signal could catch held

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, halt)

    def start(slot: int) -> tuple[BaseProcess, float]:
        proc = spawn.Process(target=_worker, args=(app, host, port, factory), name=f"orderlift-worker-{slot}")
        proc.start()
        return proc, time.monotonic()

    procs = [start(slot) for slot in range(workers)]
    early_deaths = 0
    logger.info("serving on %s:%d with %d workers (SO_REUSEPORT)", host, port, workers)
    try:
        while not stopping:
            time.sleep(0.2)
            for slot, (proc, started) in enumerate(procs):
                if proc.is_alive() or stopping:
                    continue
                early_deaths = early_deaths + 1 if time.monotonic() - started < EARLY_DEATH_S else 0
                if early_deaths >= MAX_EARLY_DEATHS:
                    raise WorkersFailed(f"workers died right after starting {early_deaths} times in a row")
                logger.warning("worker %d exited (%s); starting another", slot, proc.exitcode)
                time.sleep(RESTART_PAUSE_S)
                if not stopping:
                    procs[slot] = start(slot)
    finally:
        for proc, _ in procs:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: uvicorn finishes open requests and runs the shutdown
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc, _ in procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
        held.close()
