"""The Redis response cache: short timeouts, batched gets, generations, and a circuit breaker."""

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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.maint_notifications import MaintNotificationsConfig

from service.breaker import Breaker
from service.cache import CacheState, CacheStats, Clock, Lookup
from service.cache_keys import generation_key, stamped

__all__ = ["RedisCache"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MGET_KEYS = 64  # keys per batched get: bounds one reply's size, so the socket timeout holds

# KEYS: pairs (the scope's generation key, the answer's key); ARGV[i] is '1' when pair i has a scope.
# Returns value, generation for each pair (false for a miss; '' for an unscoped pair).
_GET = """
local out = {}
for i = 1, #ARGV do
  local key, generation = KEYS[2 * i], ''
  if ARGV[i] == '1' then
    generation = redis.call('GET', KEYS[2 * i - 1]) or '0'
    key = key .. ':g' .. generation
  end
  out[2 * i - 1] = redis.call('GET', key) or false
  out[2 * i] = generation
end
return out
"""

# KEYS[1]: the sequence; the rest: generation keys. A generation is the server's time and a
# sequence number, so none is used twice, even after a key expired or the sequence was evicted.
_BUMP = """
local now = redis.call('TIME')
local generation = now[1] .. now[2] .. '-' .. redis.call('INCR', KEYS[1])
for i = 2, #KEYS do redis.call('SET', KEYS[i], generation, 'PX', ARGV[1]) end
return generation
"""

SEQUENCE = "orderlift:gen-seq"


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
        self._get = self._client.register_script(_GET)  # EVALSHA: the text is sent once
        self._bump = self._client.register_script(_BUMP)
        self.breaker = Breaker("redis cache", retry_after_s, clock)
        self._waiting: list[tuple[str, str | None, asyncio.Future[Lookup]]] = []
        self._fetches: set[asyncio.Task[None]] = set()
        self.stats = CacheStats()

    async def _run(self, op: Callable[[], Awaitable[T]], calls: int = 1) -> tuple[bool, T | None]:
        """Run one backend operation (``calls`` callers' worth) through the breaker; never raise."""
        if not self.breaker.allow():
            self.stats.skipped += calls
            return False, None
        try:
            result = await op()
        except RedisConnectionError as exc:
            if "No connection available" not in str(exc):
                await self._fail(exc)
            else:  # every pooled connection is busy: this process is overloaded, Redis is not down
                self.stats.skipped += calls
            return False, None
        except Exception as exc:  # RedisError, OSError, TimeoutError; anything else is handled alike
            await self._fail(exc)
            return False, None
        self.breaker.succeeded()
        return True, result

    async def _fail(self, exc: Exception) -> None:
        """Count the failure, open the breaker and warn once per outage."""
        self.stats.errors += 1
        if not self.breaker.failed(exc):
            return
        try:  # idle sockets to a dead server are dead too: reconnect them lazily after the pause
            await self._client.connection_pool.disconnect(inuse_connections=False)
        except Exception:  # pragma: no cover - best-effort cleanup
            logger.debug("ignoring error while dropping idle redis connections", exc_info=True)

    async def get(self, key: str, scope: str | None = None) -> Lookup:
        """Return the cached bytes for `key` (stamped with `scope`'s generation) and the store key.

        Gets that arrive in the same turn of the event loop share one call: one round trip and
        one pooled connection for the lot. Under load that is most of them, and the client's
        per-command cost (~50 us here) is paid once per batch instead of once per request. On an
        error or an open breaker the value is None, and so is the store key of a scoped get.
        """
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Lookup] = loop.create_future()
        self._waiting.append((key, scope, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._send_batch)
        return await answer

    def _send_batch(self) -> None:
        """Start one call (of at most MGET_KEYS keys each) for every get asked for since the last batch."""
        waiting, self._waiting = self._waiting, []
        for first in range(0, len(waiting), MGET_KEYS):
            task = asyncio.ensure_future(self._fetch(waiting[first : first + MGET_KEYS]))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)

    async def _fetch(self, batch: list[tuple[str, str | None, asyncio.Future[Lookup]]]) -> None:
        """Answer each waiting get of ``batch``: MGET when none has a scope, else the script."""
        found: list[tuple[object, str]] = []
        try:
            if all(scope is None for _, scope, _ in batch):
                keys = [key for key, _, _ in batch]
                ok, got = await self._run(lambda: self._client.mget(keys), calls=len(batch))
                found = [(value, "") for value in got] if ok and got is not None else []
            else:
                pairs = [k for key, scope, _ in batch for k in (generation_key(scope or ""), key)]
                flags = ["0" if scope is None else "1" for _, scope, _ in batch]
                ok, flat = await self._run(lambda: self._get(keys=pairs, args=flags), calls=len(batch))
                if ok and flat is not None:
                    found = [(flat[i], _text(flat[i + 1])) for i in range(0, len(flat), 2)]
        finally:
            for i, (key, scope, answer) in enumerate(batch):
                value, generation = found[i] if i < len(found) else (None, None)
                if found:
                    self.stats.hits += value is not None
                    self.stats.misses += value is None
                if isinstance(value, str):
                    value = value.encode()
                store: str | None = key
                if scope is not None:
                    store = None if generation is None else stamped(key, generation)
                if not answer.done():  # a caller that went away was cancelled
                    answer.set_result(Lookup(value if isinstance(value, bytes) else None, store))

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` with a millisecond TTL."""
        if ttl_s <= 0:
            await self.delete(key)
            return
        ttl_ms = max(1, int(ttl_s * 1000))
        ok, _ = await self._run(lambda: self._client.set(key, value, px=ttl_ms))
        if ok:
            self.stats.sets += 1

    async def bump(self, ttl_s: float, *scopes: str) -> None:
        """Give each scope a new generation (kept ``ttl_s``: as long as any answer stamped with it)."""
        if scopes:
            keys = [SEQUENCE, *(generation_key(scope) for scope in scopes)]
            await self._run(lambda: self._bump(keys=keys, args=[max(1, int(ttl_s * 1000))]))

    async def delete(self, *keys: str) -> None:
        """Unlink `keys`, ignoring absent ones."""
        if keys:
            await self._run(lambda: self._client.unlink(*keys))

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
        return CacheState(self.backend, not self.breaker.broken, self.breaker.last_error, asdict(self.stats))


def _text(value: object) -> str:
    """Return a reply's generation as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
