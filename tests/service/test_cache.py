"""Tests for service.cache: the in-process TTL/LRU cache, the Redis cache and its circuit breaker."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time

import pytest
import redis

from service.cache import Cache, InProcessCache, open_cache
from service.cache_keys import cache_key
from service.redis_cache import RedisCache
from tests.harness import PrivateRedis, free_port

VALUE = os.urandom(2048) + b"\x00\r\n\xff"  # binary, not UTF-8, with RESP delimiters inside


class FakeClock:
    """A hand-advanced monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- cache_key ---------------------------------------------------------------------------------------


def test_cache_key_joins_namespace_kind_version_and_parts() -> None:
    assert cache_key("recs", "v1", "u1", "10") == "orderlift:recs:v1:u1:10"
    assert cache_key("recs", "v1") == "orderlift:recs:v1"


def test_cache_key_escapes_colons_so_ids_cannot_collide() -> None:
    assert cache_key("recs", "v1", "a:b", "c") != cache_key("recs", "v1", "a", "b:c")
    assert cache_key("recs", "v1", "a:b") == "orderlift:recs:v1:a%3Ab"


def test_cache_key_escapes_percent_so_escaped_and_raw_ids_differ() -> None:
    assert cache_key("recs", "v1", "a%3Ab") != cache_key("recs", "v1", "a:b")


# --- InProcessCache ----------------------------------------------------------------------------------


def test_in_process_get_after_set_returns_identical_bytes() -> None:
    async def scenario() -> bytes | None:
        cache = InProcessCache()
        await cache.set("k", VALUE, 60)
        return (await cache.get("k")).value

    assert asyncio.run(scenario()) == VALUE


def test_in_process_entry_expires_when_its_ttl_elapses() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        cache = InProcessCache(clock=clock)
        await cache.set("k", b"v", 10)
        clock.now += 9.9
        assert (await cache.get("k")).value == b"v"
        clock.now += 0.1
        assert (await cache.get("k")).value is None
        assert len(cache) == 0

    asyncio.run(scenario())


def test_in_process_evicts_least_recently_used_beyond_max_entries() -> None:
    async def scenario() -> None:
        cache = InProcessCache(max_entries=2)
        await cache.set("a", b"1", 60)
        await cache.set("b", b"2", 60)
        assert (await cache.get("a")).value == b"1"  # "b" is now the least recently used
        await cache.set("c", b"3", 60)
        assert len(cache) == 2
        assert (await cache.get("b")).value is None
        assert (await cache.get("a")).value == b"1"
        assert (await cache.get("c")).value == b"3"

    asyncio.run(scenario())


def test_m4_the_in_process_cache_is_bounded_in_bytes_not_only_entries() -> None:
    async def scenario() -> None:
        cache = InProcessCache(max_entries=1000, max_bytes=1000)
        for k in range(10):
            await cache.set(f"k{k}", b"x" * 300, 60)
        assert len(cache) == 3  # 3 x ~302 bytes fit in 1,000; 10 entries would have been kept before
        assert (await cache.get("k9")).value == b"x" * 300 and (await cache.get("k0")).value is None
        await cache.set("huge", b"y" * 2000, 60)  # larger than the whole bound: not stored
        assert (await cache.get("huge")).value is None and len(cache) == 3
        await cache.delete("k7", "k8", "k9")
        assert len(cache) == 0
        await cache.set("again", b"z" * 900, 60)
        assert (await cache.get("again")).value == b"z" * 900  # the bytes of deleted entries were released

    asyncio.run(scenario())


def test_in_process_delete_removes_only_given_keys() -> None:
    async def scenario() -> None:
        cache = InProcessCache()
        for key in ("a", "b", "c"):
            await cache.set(key, b"v", 60)
        await cache.delete("a", "b", "missing")
        assert (await cache.get("a")).value is None
        assert (await cache.get("b")).value is None
        assert (await cache.get("c")).value == b"v"

    asyncio.run(scenario())


def _m1_scenario(cache: Cache) -> None:
    async def scenario() -> None:
        key = cache_key("recs", "v1", "default", "u1", "5")
        old = await cache.get(key, "user:u1")
        assert old.value is None and old.store_key is not None
        await cache.bump(60, "user:u1")  # an event lands while the answer is being computed
        await cache.set(old.store_key, b"computed before the event", 60)  # stored after it
        fresh = await cache.get(key, "user:u1")
        assert fresh.value is None and fresh.store_key != old.store_key  # never read again
        await cache.set(str(fresh.store_key), b"after", 60)
        assert (await cache.get(key, "user:u1")).value == b"after"
        await cache.bump(60, "user:u1")
        assert (await cache.get(key, "user:u1")).value is None
        await cache.close()

    asyncio.run(scenario())


def test_m1_an_answer_stored_after_its_users_invalidation_is_never_served_in_process() -> None:
    _m1_scenario(InProcessCache())


@pytest.mark.redis
def test_m1_m13_an_answer_stored_after_its_users_invalidation_is_never_served_in_redis(
    redis_url: str,
) -> None:
    _m1_scenario(RedisCache(redis_url))
    with redis.Redis.from_url(redis_url) as client:  # no per-user key sets: invalidation is one SET
        assert not list(client.scan_iter(match="orderlift:tag:*"))
        assert client.pttl("orderlift:gen:user%3Au1") > 0


@pytest.mark.redis
def test_m1_a_scoped_get_that_cannot_read_the_generation_says_do_not_store() -> None:
    async def scenario() -> None:
        cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", retry_after_s=0.0)
        lookup = await cache.get("k", "user:u1")
        assert lookup == (None, None)
        assert (await cache.get("k")).store_key == "k"  # unscoped answers keep their key
        await cache.close()

    asyncio.run(scenario())


def test_in_process_non_positive_ttl_drops_the_key() -> None:
    async def scenario() -> None:
        cache = InProcessCache()
        await cache.set("k", b"v", 60)
        await cache.set("k", b"w", 0)
        assert (await cache.get("k")).value is None

    asyncio.run(scenario())


def test_in_process_stats_count_hits_misses_and_sets_in_a_json_ready_state() -> None:
    async def scenario() -> InProcessCache:
        cache = InProcessCache()
        await cache.set("k", b"v", 60)
        await cache.get("k")
        await cache.get("k")
        await cache.get("missing")
        return cache

    state = asyncio.run(scenario()).state()
    assert state.backend == "memory"
    assert state.healthy is True
    assert state.stats == {"hits": 2, "misses": 1, "errors": 0, "sets": 1, "skipped": 0}
    json.dumps(dataclasses.asdict(state))


def test_open_cache_without_url_is_in_process_and_with_url_is_redis() -> None:
    assert open_cache(None).backend == "memory"
    assert open_cache("").backend == "memory"
    assert open_cache("redis://127.0.0.1:1/0").backend == "redis"  # constructing does no I/O


# --- RedisCache against a real server ---------------------------------------------------------------


@pytest.mark.redis
def test_redis_round_trip_returns_identical_bytes_and_counts_hits_and_misses(redis_url: str) -> None:
    async def scenario() -> RedisCache:
        cache = RedisCache(redis_url)
        try:
            await cache.set("k", VALUE, 60)
            assert (await cache.get("k")).value == VALUE
            assert (await cache.get("missing")).value is None
            assert await cache.ping() is True
        finally:
            await cache.close()
        return cache

    state = asyncio.run(scenario()).state()
    assert state.backend == "redis"
    assert state.healthy is True
    assert state.last_error is None
    assert state.stats == {"hits": 1, "misses": 1, "errors": 0, "sets": 1, "skipped": 0}


@pytest.mark.redis
def test_redis_set_puts_the_ttl_on_the_key(redis_url: str) -> None:
    async def scenario() -> None:
        cache = RedisCache(redis_url)
        await cache.set("k", b"v", 30)
        await cache.close()

    asyncio.run(scenario())
    with redis.Redis.from_url(redis_url) as client:
        assert 0 < client.pttl("k") <= 30_000


@pytest.mark.redis
def test_redis_stores_values_under_the_key_cache_key_built(redis_url: str) -> None:
    key = cache_key("recs", "v1", "user:1", "10")

    async def scenario() -> None:
        cache = RedisCache(redis_url)
        await cache.set(key, b"payload", 60)
        await cache.close()

    asyncio.run(scenario())
    with redis.Redis.from_url(redis_url) as client:
        assert client.keys("*") == [b"orderlift:recs:v1:user%3A1:10"]
        assert client.get(key) == b"payload"


@pytest.mark.redis
def test_redis_delete_removes_the_keys(redis_url: str) -> None:
    async def scenario() -> None:
        cache = RedisCache(redis_url)
        await cache.set("a", b"1", 60)
        await cache.set("b", b"2", 60)
        await cache.delete("a", "missing")
        assert (await cache.get("a")).value is None
        assert (await cache.get("b")).value == b"2"
        await cache.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_redis_that_dies_is_skipped_quickly_and_used_again_once_it_returns(
    throwaway_redis: PrivateRedis,
) -> None:
    retry_after_s = 0.3

    async def scenario() -> None:
        cache = RedisCache(throwaway_redis.url, retry_after_s=retry_after_s)
        await cache.set("k", b"before", 60)
        assert (await cache.get("k")).value == b"before"
        assert cache.state().healthy is True

        throwaway_redis.kill()
        started = time.perf_counter()
        results = [(await cache.get("k")).value for _ in range(20)]
        elapsed = time.perf_counter() - started
        assert results == [None] * 20
        assert elapsed < 0.5
        state = cache.state()
        assert state.healthy is False
        assert state.last_error is not None
        assert state.stats["errors"] >= 1
        assert state.stats["errors"] + state.stats["skipped"] == 20
        assert state.stats["skipped"] >= 1
        await cache.set("k", b"lost", 60)  # neither raises nor blocks
        assert await cache.ping() is False

        throwaway_redis.start()  # same port, empty data set
        await asyncio.sleep(retry_after_s + 0.05)
        assert (await cache.get("k")).value is None  # a real miss from the new server, not a skip
        assert cache.state().healthy is True
        await cache.set("k", b"after", 60)
        assert (await cache.get("k")).value == b"after"
        assert await cache.ping() is True
        await cache.close()

    asyncio.run(scenario())


def test_redis_where_nothing_listens_never_raises_and_reports_unhealthy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def scenario() -> RedisCache:
        cache = RedisCache(url, retry_after_s=0.0)  # no pause: every call really tries the socket
        assert (await cache.get("k")).value is None
        await cache.set("k", b"v", 60)
        await cache.delete("k")
        await cache.bump(60, "user:u1")
        assert await cache.ping() is False
        assert (await cache.get("k")).value is None
        await cache.close()
        return cache

    with caplog.at_level(logging.WARNING, logger="service.redis_cache"):
        started = time.perf_counter()
        state = asyncio.run(scenario()).state()
        assert time.perf_counter() - started < 1.0
    assert state.healthy is False
    assert state.last_error is not None
    assert state.stats["errors"] == 6
    assert state.stats["hits"] == state.stats["misses"] == state.stats["sets"] == 0
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # one per outage


def test_redis_breaker_skips_calls_until_retry_after_then_probes_again() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    clock = FakeClock()

    async def scenario() -> None:
        cache = RedisCache(url, retry_after_s=1.0, clock=clock)
        assert (await cache.get("k")).value is None
        assert cache.state().stats["errors"] == 1
        for _ in range(5):
            assert (await cache.get("k")).value is None
        assert cache.state().stats["skipped"] == 5
        clock.now += 1.0
        assert (await cache.get("k")).value is None  # the probe really tries, and fails again
        assert cache.state().stats["errors"] == 2
        assert (await cache.get("k")).value is None
        assert cache.state().stats["skipped"] == 6
        await cache.close()

    asyncio.run(scenario())


@pytest.mark.redis
def test_redis_gets_in_the_same_turn_share_one_round_trip(redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)

    def mgets() -> int:
        stats = admin.info("commandstats").get("cmdstat_mget", {})
        return int(stats.get("calls", 0)) if isinstance(stats, dict) else 0

    async def scenario(asked: int) -> tuple[list[bytes | None], int]:
        cache = RedisCache(redis_url)
        try:
            for i in range(0, asked, 2):
                await cache.set(f"batch:{i}", f"value {i}".encode(), 60)
            before = mgets()
            got = await asyncio.gather(*(cache.get(f"batch:{i}") for i in range(asked)))
            return [lookup.value for lookup in got], mgets() - before
        finally:
            await cache.close()

    got, round_trips = asyncio.run(scenario(10))
    assert got == [f"value {i}".encode() if i % 2 == 0 else None for i in range(10)]
    assert round_trips == 1
    got, round_trips = asyncio.run(scenario(100))  # at most MGET_KEYS keys per round trip
    assert got == [f"value {i}".encode() if i % 2 == 0 else None for i in range(100)]
    assert round_trips == 2
