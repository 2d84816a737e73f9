"""Shared fixtures: a small synthetic store and its dataset; a real Redis (required in CI)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from features.bundle import Bundle, load_bundle
from features.dataset import Dataset, load_dataset
from features.io import resolve_format
from features.synthetic import SyntheticStore, generate_store, write_store
from training.job import TrainConfig, run_training


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Return the URL of a real, empty Redis database; fail if CI requires one and none answers."""

    url = os.environ.get("ORDERLIFT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis at {url} is not reachable: {exc}"
        if os.environ.get("ORDERLIFT_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def store() -> SyntheticStore:
    """Return a deterministic store: 1,500 users, 200 items, 60 days."""
    return generate_store(users=1500, items=200, days=60, seed=11)


@pytest.fixture(scope="session")
def store_dir(store: SyntheticStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory holding the store's events.csv, items.csv and truth.json."""
    out = tmp_path_factory.mktemp("store")
    write_store(store, out)
    return out


@pytest.fixture(scope="session")
def dataset(store_dir: Path) -> Dataset:
    """Return the store loaded through the event pipeline, with its catalog."""
    return load_dataset(store_dir / "events.csv", resolve_format(), store_dir / "items.csv")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayRedis:
    """A private redis-server on its own port that a test may kill -9 and restart."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._workdir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._proc = subprocess.Popen(
            [*args, "--dir", str(self._workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.2)
        deadline = time.monotonic() + 10.0
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline or self._proc.poll() is not None:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def pause(self, paused: bool = True) -> None:
        """Freeze (SIGSTOP) or thaw (SIGCONT) the server: it keeps its sockets but answers nothing."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    """Start a private redis-server (never the shared one) and kill it at teardown."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed"
        if os.environ.get("ORDERLIFT_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    server = ThrowawayRedis(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session", autouse=True)
def _event_log_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every app's embedded event log out of the working tree."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORDERLIFT_EVENT_LOG", str(tmp_path_factory.mktemp("events") / "events.jsonl"))
        yield


@pytest.fixture(scope="session")
def bundle_dir(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a bundle of an ALS model trained on the synthetic store."""
    out = tmp_path_factory.mktemp("served") / "bundle"
    config = TrainConfig(model="als", params={"factors": 16, "iterations": 8}, holdout=0.2)
    run_training(dataset, config, out, {"fingerprint": "test"})
    return out


@pytest.fixture(scope="session")
def bundle(bundle_dir: Path) -> Bundle:
    """Return the served bundle, loaded."""
    return load_bundle(bundle_dir)


def without_recommendation_id(body: bytes) -> bytes:
    """Return answer bytes with the per-response recommendation id blanked (L9: minted per response)."""
    import re

    return re.sub(rb'"recommendation_id":"[^"]*"', b'"recommendation_id":""', body)
