"""Response cache: the interface, its health types, a bounded in-process TTL/LRU store, and the factory.

The Redis backend (behind a circuit breaker) is ``service.redis_cache``; how keys are spelled is
``service.cache_keys``. Every backend is best-effort and never raises.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple, Protocol

from cachetools import LRUCache

from service.cache_keys import stamped

__all__ = ["Cache", "CacheState", "CacheStats", "Clock", "InProcessCache", "Lookup", "open_cache"]


Clock = Callable[[], float]


@dataclass
class CacheStats:
    """Count cache outcomes; `skipped` counts calls not sent because the breaker was open."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    sets: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class CacheState:
    """Describe a cache's health as a JSON-ready snapshot (for /readyz)."""

    backend: str
    healthy: bool
    last_error: str | None
    stats: dict[str, int]


class Lookup(NamedTuple):
    """What a get found: the value (None on a miss), and the key a fresh answer is stored under.

    ``store_key`` is None when the answer must not be stored: its scope's generation could not
    be read, so a stored answer might outlive an invalidation.
    """

    value: bytes | None
    store_key: str | None


class Cache(Protocol):
    """Store bytes under string keys with a TTL; every data method is best-effort and never raises.

    A get with a ``scope`` reads the scope's generation and the key stamped with it (one round
    trip); ``bump`` gives scopes new generations (``service.cache_keys``).
    """

    backend: str
    in_process: bool  # set never waits: callers need no background task for it

    async def get(self, key: str, scope: str | None = None) -> Lookup: ...
    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...
    async def bump(self, ttl_s: float, *scopes: str) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...
    def state(self) -> CacheState: ...


class InProcessCache:
    """Keep up to `max_entries` values and `max_bytes` of keys and values in memory, each with a TTL,
    evicting the least recently used; scopes' generations are kept for as many scopes."""

    backend: str = "memory"
    in_process: bool = True

    def __init__(
        self, max_entries: int = 50_000, max_bytes: int = 256 << 20, *, clock: Clock = time.monotonic
    ) -> None:
        """Create an empty cache; `clock` returns monotonic seconds (injectable for tests)."""
        if max_entries < 1 or max_bytes < 1:
            raise ValueError(f"max_entries and max_bytes must be >= 1, got {max_entries}, {max_bytes}")
        self._max_entries, self._max_bytes, self._bytes = max_entries, max_bytes, 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._generations: LRUCache[str, int] = LRUCache(maxsize=max(max_entries, 100_000))
        self._sequence = itertools.count(1)
        self.stats = CacheStats()

    def __len__(self) -> int:
        """Return the number of stored entries, expired ones included until touched."""
        return len(self._entries)

    # No method awaits anything, so each one runs atomically on the event loop.
    async def get(self, key: str, scope: str | None = None) -> Lookup:
        """Return the live value for `key` (stamped with `scope`'s generation) and its store key."""
        if scope is not None:
            key = stamped(key, str(self._generations.get(scope, 0)))
        entry = self._entries.get(key)
        if entry is not None and entry[0] <= self._clock():
            self._drop(key)
            entry = None
        if entry is None:
            self.stats.misses += 1
            return Lookup(None, key)
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return Lookup(entry[1], key)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store `value` for `ttl_s` seconds; evict LRU entries."""
        self._drop(key)
        if ttl_s <= 0 or len(key) + len(value) > self._max_bytes:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._bytes += len(key) + len(value)
        self.stats.sets += 1
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        """Remove one key and its bytes."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(key) + len(entry[1])

    async def bump(self, ttl_s: float, *scopes: str) -> None:
        """Give each scope a generation never used before: its stored answers are not read again."""
        for scope in scopes:
            self._generations[scope] = next(self._sequence)

    async def delete(self, *keys: str) -> None:
        """Remove `keys`, ignoring absent ones."""
        for key in keys:
            self._drop(key)

    async def ping(self) -> bool:
        """Report that memory is always reachable."""
        return True

    async def close(self) -> None:
        """Drop all entries."""
        self._entries.clear()
        self._generations.clear()
        self._bytes = 0

    def state(self) -> CacheState:
        """Return a health snapshot."""
        return CacheState(self.backend, True, None, asdict(self.stats))


def open_cache(
    redis_url: str | None,
    *,
    socket_timeout_s: float = 0.05,
    retry_after_s: float = 1.0,
    max_entries: int = 50_000,
    max_bytes: int = 256 << 20,
) -> Cache:
    """Return a RedisCache for `redis_url`, or an InProcessCache when no URL is given."""
    from service.redis_cache import RedisCache  # here: that module builds on this one's types

    if not redis_url:
        return InProcessCache(max_entries, max_bytes)
    return RedisCache(
        redis_url,
        socket_timeout_s=socket_timeout_s,
        socket_connect_timeout_s=max(0.25, socket_timeout_s),  # new connections come in bursts under load
        retry_after_s=retry_after_s,
    )
