"""Per-key request rates: the ``limits`` library's fixed windows, in Redis when configured.

Each key is counted under its role's rate (``ORDERLIFT_RATE_LIMIT_STOREFRONT`` and friends) by a
digest of the key, never the key itself; page logins are counted per client address. Over the
rate, the gate answers 429 with ``Retry-After``. Counting lives in the cache's Redis, so every
replica shares one count; when that Redis fails, counting goes on in this process (per worker)
for ``ORDERLIFT_REDIS_RETRY_AFTER_S`` and the service keeps answering (``degraded`` says so).
Without keys there is no identity to count: an open development service has no per-key limit,
and the shipped nginx limits each address.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from service.auth import Role
from service.config import Settings
from service.errors import RateLimited

__all__ = ["RateLimiter"]

logger = logging.getLogger(__name__)


class RateLimiter:
    """Count requests per key (or login address) and refuse those over their rate."""

    def __init__(self, settings: Settings) -> None:
        self.rates: dict[str, list[RateLimitItem]] = {
            Role.STOREFRONT: parse_many(settings.rate_limit_storefront),
            Role.MARKETER: parse_many(settings.rate_limit_marketer),
            Role.ADMIN: parse_many(settings.rate_limit_admin),
            "login": parse_many(settings.rate_limit_login),
        }
        self.local = FixedWindowRateLimiter(MemoryStorage())
        self.shared: FixedWindowRateLimiter | None = None
        if settings.redis_url:
            storage: Storage = RedisStorage(
                f"async+{settings.redis_url}",
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix="orderlift:rate",
                socket_timeout=settings.redis_timeout_s,
                socket_connect_timeout=settings.redis_timeout_s,
            )
            self.shared = FixedWindowRateLimiter(storage)
        self.retry_after_s = settings.redis_retry_after_s
        self.skip_until = 0.0
        self.degraded = False

    async def check(self, kind: str, identity: str) -> None:
        """Count one request of ``identity`` under ``kind``'s rate; raise RateLimited when over it."""
        name = hashlib.sha256(identity.encode()).hexdigest()[:24]
        limiter = self.local
        if self.shared is not None and time.monotonic() >= self.skip_until:
            limiter = self.shared
        for rate in self.rates[kind]:
            try:
                allowed = await limiter.hit(rate, kind, name)
            except (StorageError, RedisError, OSError) as exc:
                logger.warning("rate counting falls back to this process: %s", exc)
                self.skip_until, self.degraded = time.monotonic() + self.retry_after_s, True
                limiter = self.local
                allowed = await limiter.hit(rate, kind, name)
            else:
                self.degraded = limiter is self.local and self.shared is not None
            if not allowed:
                stats = await limiter.get_window_stats(rate, kind, name)
                wait = max(1, math.ceil(stats.reset_time - time.time()))
                field = "client" if kind == "login" else "X-API-Key"
                raise RateLimited(
                    f"over the {kind} rate of {rate}; retry in {wait} s", wait, field, str(rate)
                )
