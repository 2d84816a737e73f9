"""Each user's live history: the items they interacted with (weighted like training), the items
they carted or bought (left out of their recommendations at once) and the items they dismissed
(never shown to them again), in Redis or in this process."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from features.schema import DISMISSING, LIVE_WEIGHTS, OWNING
from service.breaker import Breaker

__all__ = ["LIVE_MAX_ITEMS", "LiveHistory", "LiveStore", "live_keys"]

logger = logging.getLogger(__name__)

LIVE_TTL_S = 30 * 24 * 3600
LOCAL_USERS = 200_000  # live histories kept in-process (embedded mode); Redis keeps them 30 days
LIVE_MAX_ITEMS = 500  # distinct items per event type in one user's live history: later new ones are not added
OWNING_TYPES = frozenset(t.value for t in OWNING)
DISMISSING_TYPES = frozenset(t.value for t in DISMISSING)
DISMISSED_TTL_S = 365 * 24 * 3600  # a dismissal outlives live history: training learns it within a year
COUNTED_TYPES = tuple(LIVE_WEIGHTS)  # the live types that train, counted per item
LEGACY = ""  # weights recorded before per-type counts (orderlift:live:{user}), read as they are


def live_keys(user_id: str) -> list[str]:
    """Return every Redis key of a user's live history: one count hash per type, owned, dismissed."""
    return [
        f"orderlift:live:{user_id}",  # LEGACY: expires within LIVE_TTL_S of its last write
        *(f"orderlift:live-{kind}:{user_id}" for kind in COUNTED_TYPES),
        f"orderlift:owned:{user_id}",
        f"orderlift:dismissed:{user_id}",
    ]


@dataclass
class LiveHistory:
    """One user's live interactions: per event type, item -> count; and the items they carted or bought.

    Counts, not weights: the model that answers weighs them with the event weights it was
    trained with (``weights``), so live events count as training counted them.
    """

    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    owned: set[str] = field(default_factory=set)
    dismissed: set[str] = field(default_factory=set)
    complete: bool = True  # False: it could not be read, so an answer built on it is not cached

    def __bool__(self) -> bool:
        return bool(self.owned) or bool(self.dismissed) or any(self.counts.values())

    def weights(self, by_type: Mapping[str, float]) -> dict[str, float]:
        """Return item -> weight under ``by_type`` (a type without a weight counts 0)."""
        out: dict[str, float] = {}
        for kind, items in self.counts.items():
            weight = 1.0 if kind == LEGACY else by_type.get(kind, 0.0)
            for item, count in items.items():
                out[item] = out.get(item, 0.0) + count * weight
        return out


_LIVE_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  if ARGV[4] == '1' then
    redis.call('SADD', KEYS[2], ARGV[1])
    redis.call('EXPIRE', KEYS[2], ARGV[3])
  end
end
"""

_DISMISS_ADD = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 or redis.call('SCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('SADD', KEYS[1], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
"""


class LiveStore:
    """Per-user live history, in Redis (shared by workers) or in this process."""

    def __init__(
        self, client: aioredis.Redis | None = None, timeout_s: float = 0.05, retry_after_s: float = 1.0
    ) -> None:
        self.client = client
        self._add = None if client is None else client.register_script(_LIVE_ADD)  # once, not per call
        self._dismiss = None if client is None else client.register_script(_DISMISS_ADD)
        self.local: OrderedDict[str, LiveHistory] = OrderedDict()  # in-process: the most recent users
        self.timeout_s = timeout_s
        self.breaker = Breaker("live history", retry_after_s)

    async def record(self, records: list[dict[str, Any]]) -> set[str]:
        """Fold events into their users' live history; return the users whose answers changed."""
        touched = [r for r in records if r["type"] in LIVE_WEIGHTS or r["type"] in DISMISSING_TYPES]
        if self.client is None:
            for r in touched:
                live = self.local.setdefault(r["user_id"], LiveHistory())
                self.local.move_to_end(r["user_id"])
                if r["type"] in DISMISSING_TYPES:
                    if r["item_id"] in live.dismissed or len(live.dismissed) < LIVE_MAX_ITEMS:
                        live.dismissed.add(r["item_id"])
                    continue
                item, counted = r["item_id"], live.counts.setdefault(r["type"], {})
                if item not in counted and len(counted) >= LIVE_MAX_ITEMS:
                    continue  # bounded: one user cannot grow without end
                counted[item] = counted.get(item, 0.0) + 1.0
                if r["type"] in OWNING_TYPES:
                    live.owned.add(item)
            while len(self.local) > LOCAL_USERS:
                self.local.popitem(last=False)
            return {r["user_id"] for r in touched}
        pipe, add, dismiss = self.client.pipeline(transaction=False), self._add, self._dismiss
        assert add is not None and dismiss is not None  # registered with the client
        for r in touched:
            keys = live_keys(r["user_id"])
            if r["type"] in DISMISSING_TYPES:
                args = [r["item_id"], DISMISSED_TTL_S, LIVE_MAX_ITEMS]
                await dismiss(keys=[keys[-1]], args=args, client=pipe)
                continue
            counts_key, owned_key = keys[1 + COUNTED_TYPES.index(r["type"])], keys[-2]
            owning = int(r["type"] in OWNING_TYPES)
            args = [r["item_id"], 1, LIVE_TTL_S, owning, LIVE_MAX_ITEMS]
            await add(keys=[counts_key, owned_key], args=args, client=pipe)  # queued: the pipeline runs them
        if touched:
            await pipe.execute()
        return {r["user_id"] for r in touched}

    async def get(self, user_id: str) -> LiveHistory:
        """Return a user's live history (empty when unknown or when Redis fails)."""
        if self.client is None:
            found = self.local.get(user_id)
            if found is None:
                return LiveHistory()
            self.local.move_to_end(user_id)  # recently read users are kept, not only recently written
            return found
        if not self.breaker.allow():  # Redis failed a moment ago: answer without live history
            return LiveHistory(complete=False)
        try:
            pipe = self.client.pipeline(transaction=False)
            *count_keys, owned_key, dismissed_key = live_keys(user_id)
            for key in count_keys:
                pipe.hgetall(key)
            pipe.smembers(owned_key)
            pipe.smembers(dismissed_key)
            *hashes, owned, dismissed = await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except aioredis.ResponseError as exc:  # this user's keys are bad, not Redis: no pause for others
            self.breaker.failures += 1
            logger.warning("live history of one user unreadable: %s", exc)
            return LiveHistory(complete=False)
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            self.breaker.failed(exc)
            return LiveHistory(complete=False)
        self.breaker.succeeded()
        counts = {
            kind: {k.decode(): float(v) for k, v in found.items()}
            for kind, found in zip((LEGACY, *COUNTED_TYPES), hashes, strict=True)
            if found
        }
        return LiveHistory(counts, {o.decode() for o in owned}, {d.decode() for d in dismissed})
