"""Shared fixtures: a real Redis for the Redis path (required in CI, skipped elsewhere)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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
