"""The Redis response cache: short timeouts, batched gets, tag sets, and a circuit breaker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

from service.cache import CacheState, CacheStats, Clock
from service.cache_keys import tag_key

__all__ = ["RedisCache"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MGET_KEYS = 64  # keys per batched get: bounds one reply's size, so the socket timeout holds

_GLOB_ESCAPES = str.maketrans({c: "\\" + c for c in "\\*?[]"})

_INVALIDATE = """
local removed = 0
for t = 1, #KEYS do
  local keys = redis.call('SMEMBERS', KEYS[t])
  for i = 1, #keys, 500 do
    redis.call('UNLINK', unpack(keys, i, math.min(i + 499, #keys)))
  end
  removed = removed + #keys
end
if #KEYS > 0 then redis.call('UNLINK', unpack(KEYS)) end
return removed
"""


class RedisCache:
    """Cache in Redis with short timeouts; after a failure, skip Redis for `retry_after_s`, then probe."""

    backend: str = "redis"
    in_process: bool = False

    def __init__(
        self,
        url: str,
        *,
        socket_timeout_s: float = 0.05,
        socket_connect_timeout_s: float = 0.05,
        retry_after_s: float = 1.0,
        max_connections: int = 64,
        scan_count: int = 1000,
        clock: Clock = time.monotonic,
    ) -> None:
        """Configure a lazily connecting client; no I/O happens until the first call."""
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout_s,  # longest wait for a free pooled connection
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_connect_timeout_s,
            health_check_interval=0,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
            # Keep connection set-up to SELECT alone: RESP3's HELLO, CLIENT SETINFO and the maintenance
            # handshake each cost a round trip, and a burst of fresh connections paying them all blew
            # through the 50 ms timeouts. "auto" maintenance mode also stops the pool from noticing
            # that an idle connection was closed by a restarted server.
            protocol=2,
            driver_info=None,
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._client = aioredis.Redis.from_pool(pool)
        self._invalidate = self._client.register_script(_INVALIDATE)  # EVALSHA: the text is sent once
        self._retry_after_s = retry_after_s
        self._scan_count = scan_count
        self._clock = clock
        self._broken = False
        self._open_until = 0.0
        self._last_error: str | None = None
        self._waiting: list[tuple[str, asyncio.Future[bytes | None]]] = []
        self._fetches: set[asyncio.Task[None]] = set()
        self.stats = CacheStats()

    async def _run(self, op: Callable[[], Awaitable[T]], calls: int = 1) -> tuple[bool, T | None]:
        """Run one backend operation (``calls`` callers' worth) through the breaker; never raise."""
        now = self._clock()
        if now < self._open_until:
            self.stats.skipped += calls
            return False, None
        if self._broken:  # half-open: this call probes, concurrent ones are skipped until it ends
            self._open_until = now + self._retry_after_s
        try:
            result = await op()
        except Exception as exc:  # RedisError, OSError, TimeoutError; anything else is handled alike
            await self._fail(exc)
            return False, None
        if self._broken:
            self._broken, self._open_until = False, 0.0
            logger.info("redis cache reachable again; breaker closed")
        return True, result

    async def _fail(self, exc: Exception) -> None:
        """Count the failure, open the breaker and warn once per outage."""
        self.stats.errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._open_until = self._clock() + self._retry_after_s
        if self._broken:
            logger.debug("redis cache still failing: %s", self._last_error)
            return
        self._broken = True
        logger.warning("redis cache failed, skipping it for %.2fs: %s", self._retry_after_s, self._last_error)
        try:  # idle sockets to a dead server are dead too: reconnect them lazily after the pause
            await self._client.connection_pool.disconnect(inuse_connections=False)
        except Exception:  # pragma: no cover - best-effort cleanup
            logger.debug("ignoring error while dropping idle redis connections", exc_info=True)

    async def get(self, key: str) -> bytes | None:
        """Return the cached bytes for `key`, or None on a miss, an error or an open breaker.

        Gets that arrive in the same turn of the event loop share one MGET: one round trip and
        one pooled connection for the lot. Under load that is most of them, and the client's
        per-command cost (~50 us here) is paid once per batch instead of once per request.
        """
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes | None] = loop.create_future()
        self._waiting.append((key, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._send_batch)
        return await answer

    def _send_batch(self) -> None:
        """Start MGETs (of at most MGET_KEYS keys each) for every key asked for since the last batch."""
        waiting, self._waiting = self._waiting, []
        for first in range(0, len(waiting), MGET_KEYS):
            task = asyncio.ensure_future(self._fetch(waiting[first : first + MGET_KEYS]))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)

    async def _fetch(self, batch: list[tuple[str, asyncio.Future[bytes | None]]]) -> None:
        """Answer each waiting get of ``batch`` from one MGET (None for all when it fails)."""
        keys = [key for key, _ in batch]
        values: list[object] = []
        try:
            ok, got = await self._run(lambda: self._client.mget(keys), calls=len(batch))
            values = list(got) if ok and got is not None else []
        finally:
            for i, (_, answer) in enumerate(batch):
                value = values[i] if i < len(values) else None
                if values:
                    self.stats.hits += value is not None
                    self.stats.misses += value is None
                if isinstance(value, str):
                    value = value.encode()
                if not answer.done():  # a caller that went away was cancelled
                    answer.set_result(value if isinstance(value, bytes) else None)

    async def set(self, key: str, value: bytes, ttl_s: float, tag: str | None = None) -> None:
        """Store `value` with a millisecond TTL; a tag's key set lives as long (one round trip)."""
        if ttl_s <= 0:
            await self.delete(key)
            return
        ttl_ms = max(1, int(ttl_s * 1000))
        if tag is None:
            ok, _ = await self._run(lambda: self._client.set(key, value, px=ttl_ms))
        else:
            members = tag_key(tag)

            async def tagged() -> object:
                pipe = self._client.pipeline(transaction=False)
                pipe.set(key, value, px=ttl_ms)
                pipe.sadd(members, key)
                pipe.pexpire(members, ttl_ms)
                return await pipe.execute()

            ok, _ = await self._run(tagged)
        if ok:
            self.stats.sets += 1

    async def invalidate(self, *tags: str) -> int:
        """Unlink every key stored under any of `tags` in one script call; return how many."""
        if not tags:
            return 0
        keys = [tag_key(tag) for tag in tags]
        ok, removed = await self._run(lambda: self._invalidate(keys=keys))
        return int(removed) if ok and removed is not None else 0

    async def delete(self, *keys: str) -> None:
        """Unlink `keys`, ignoring absent ones."""
        if keys:
            await self._run(lambda: self._client.unlink(*keys))

    async def _unlink_matching(self, pattern: str) -> int:
        """SCAN for `pattern` and UNLINK each batch; return how many keys were removed."""
        removed, cursor = 0, 0
        while True:
            cursor, keys = await self._client.scan(cursor=cursor, match=pattern, count=self._scan_count)
            if keys:
                removed += int(await self._client.unlink(*keys))
            if cursor == 0:
                return removed

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with `prefix`; return how many were removed (0 on failure)."""
        ok, removed = await self._run(lambda: self._unlink_matching(prefix.translate(_GLOB_ESCAPES) + "*"))
        return removed if ok and removed is not None else 0

    async def ping(self) -> bool:
        """Return whether Redis answers PING now (False while the breaker is open)."""
        ok, pong = await self._run(lambda: self._client.ping())
        return ok and bool(pong)

    async def close(self) -> None:
        """Close the client and its connection pool."""
        try:
            await self._client.aclose()
        except Exception:
            logger.debug("ignoring error while closing the redis cache", exc_info=True)

    def state(self) -> CacheState:
        """Return a health snapshot: healthy until a failure, and again after the next success."""
        return CacheState(self.backend, not self._broken, self._last_error, asdict(self.stats))
