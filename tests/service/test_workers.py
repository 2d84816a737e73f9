"""`orderlift serve --workers N`: one socket per worker on one port, dead workers replaced."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import free_port

ORDERLIFT = Path(sys.executable).parent / "orderlift"


def _children(pid: int) -> set[int]:
    """Return the live, non-zombie child processes of ``pid`` that run a worker."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
            found.add(int(stat.parent.name))
    return found


def _wait(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.2)


@pytest.fixture
def served(artifact_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {**os.environ, "ORDERLIFT_MODEL_URI": str(artifact_dir), "ORDERLIFT_RELOAD_INTERVAL_S": "0"}
    proc = subprocess.Popen(
        [str(ORDERLIFT), "serve", "--workers", "2", "--local-workers", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _started(served: tuple[subprocess.Popen[bytes], str]) -> tuple[subprocess.Popen[bytes], str, set[int]]:
    """Wait until both workers answer; return the supervisor, the URL and the workers' pids."""
    proc, url = served
    _wait(lambda: len(_children(proc.pid)) == 2 and _ready(url))
    return proc, url, _children(proc.pid)


def test_two_workers_serve_one_port_and_a_dead_one_is_replaced(
    served: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, url, first = _started(served)
    os.kill(min(first), signal.SIGKILL)
    _wait(lambda: len(_children(proc.pid)) == 2 and min(first) not in _children(proc.pid))
    _wait(lambda: all(_ready(url) for _ in range(10)))


def test_sigterm_stops_every_worker(served: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, url, workers = _started(served)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 10)
    assert not _ready(url)


def test_a_taken_port_fails_at_once(artifact_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "ORDERLIFT_MODEL_URI": str(artifact_dir)}
        done = subprocess.run(
            [str(ORDERLIFT), "serve", "--workers", "2", "--local-workers", "--port", str(port)],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
    assert b"Traceback" not in done.stderr


def test_workers_stop_by_themselves_when_the_supervisor_is_killed(
    served: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, _, workers = _started(served)
    proc.kill()
    proc.wait(timeout=10)
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 40)


def test_workers_that_die_at_start_end_the_command_instead_of_restarting_forever(
    artifact_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")  # the event log's directory is a file: every worker's startup fails
    env = {
        **os.environ,
        "ORDERLIFT_MODEL_URI": str(artifact_dir),
        "ORDERLIFT_EVENT_LOG": str(tmp_path / "file/e.jsonl"),
    }
    done = subprocess.run(
        [str(ORDERLIFT), "serve", "--workers", "2", "--local-workers", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert b"workers died right after starting" in done.stderr


def test_serve_names_a_bad_setting_in_one_line_before_starting_workers() -> None:
    env = {**os.environ, "ORDERLIFT_CACHE_TTL_S": "-1", "ORDERLIFT_MODEL_URI": "/nowhere"}
    done = subprocess.run(
        [str(ORDERLIFT), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"ORDERLIFT_CACHE_TTL_S" in done.stderr and b"-1" in done.stderr
    assert b"Traceback" not in done.stderr


def test_m9_several_workers_without_redis_are_refused_unless_meant(artifact_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLIFT_")}
    env["ORDERLIFT_MODEL_URI"] = str(artifact_dir)
    done = subprocess.run(
        [str(ORDERLIFT), "serve", "--workers", "2", "--port", str(free_port())],
        env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert b"ORDERLIFT_REDIS_URL" in done.stderr and b"--local-workers" in done.stderr
