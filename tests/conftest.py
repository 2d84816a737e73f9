"""Shared fixtures: a small synthetic store and its dataset; a real Redis (required in CI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.dataset import Dataset, load_dataset
from features.io import resolve_format
from features.synthetic import SyntheticStore, generate_store, write_store


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Return the URL of a real, empty Redis database; fail if CI requires one and none answers."""
    import redis

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
