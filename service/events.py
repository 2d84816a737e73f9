"""Live events: validation one by one, a durable append, and each user's live history.

Durability: an accepted batch is appended before the service answers 202: to a Redis stream
(``orderlift:events``) when Redis is configured, else to a JSON-lines file that is flushed and
fsynced per request. ``event_id`` makes retries idempotent: Redis keeps a marker per id for
``EVENT_ID_TTL_S`` and adds an event only if its marker is new (one Lua script per batch); the file
mode keeps the ids it has seen (one process: several workers need Redis). The live history is what
requests read: per user, the items they interacted with (weighted like training) and the items
they carted or bought (left out of their recommendations at once).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
import redis.asyncio as aioredis
from cachetools import LRUCache
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from features.eventlog import STREAM_KEY, read_jsonl, variant_of

__all__ = [
    "EventIn",
    "EventLogUnavailable",
    "EventSink",
    "FileEventSink",
    "LiveHistory",
    "LiveStore",
    "RedisEventSink",
    "live_keys",
    "validate_events",
]

logger = logging.getLogger(__name__)

MAX_EVENT_AGE = timedelta(days=30)  # a live event's timestamp is clamped to at most this old...
MAX_CLOCK_SKEW = timedelta(minutes=5)  # ...and at most this far in the future

EVENT_ID_TTL_S = 7 * 24 * 3600
LIVE_TTL_S = 30 * 24 * 3600
LOCAL_USERS = 200_000  # live histories kept in-process (embedded mode); Redis keeps them 30 days
LIVE_MAX_ITEMS = 500  # distinct items in one user's live history: later new items are not added
SEEN_IDS = 1_000_000  # event ids the file log remembers for idempotency (the most recent)
OWNING_TYPES = frozenset({"cart", "purchase"})
LIVE_WEIGHTS = {"view": 1.0, "click": 1.0, "cart": 4.0, "purchase": 10.0}


class EventLogUnavailable(RuntimeError):
    """The event log cannot take events now; nothing was acknowledged."""


class EventIn(BaseModel):
    """One event sent by the storefront."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(None, min_length=1, max_length=200, description="Makes retries idempotent.")
    user_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    type: Literal["view", "cart", "purchase", "click", "impression"]
    timestamp: datetime | None = Field(None, description="ISO 8601; naive means UTC; default: now.")
    order_id: str | None = Field(None, min_length=1, max_length=200)
    quantity: float | None = Field(None, gt=0, le=1_000_000, strict=True)
    price: float | None = Field(None, ge=0, le=1_000_000_000, strict=True)
    recommendation_id: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        """Accept only an ISO 8601 string, as the schema says (pydantic would read a number as epoch)."""
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError(f"timestamp must be an ISO 8601 string, got {type(value).__name__} {value!r}")
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Read naive times as UTC; a time beyond datetime's range in UTC becomes its nearest end."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # year 1 east of UTC, or 9999 west of it
            return (datetime.min if value.year < 5000 else datetime.max).replace(tzinfo=UTC)


def clamp_timestamp(value: datetime, now: datetime) -> datetime:
    """Return ``value`` within ``[now - MAX_EVENT_AGE, now + MAX_CLOCK_SKEW]`` (live events only)."""
    return min(max(value, now - MAX_EVENT_AGE), now + MAX_CLOCK_SKEW)


_BATCH = TypeAdapter(list[EventIn])


def validate_events(raw: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Validate each event on its own; return (records to log, errors with index, field, reason, clamped).

    The batch is validated in one call; when some events are bad, their errors are reported and
    the rest is validated again without them. A timestamp outside ``[now - 30 days, now + 5 min]``
    (a bad clock, or history that belongs in the training files) is set to the nearest bound and
    counted, so no single event can become the "latest" that decay and holdouts are measured from.
    """
    items, errors, bad = list(raw), [], set()
    try:
        events = _BATCH.validate_python(items)
    except ValidationError as exc:
        for err in exc.errors():
            index, *where = err.get("loc", ("?",))
            bad.add(index)
            field = ".".join(str(p) for p in where) or "event"
            errors.append({"index": index, "field": field, "reason": err.get("msg", "invalid")})
        kept = [i for i in range(len(items)) if i not in bad]
        events = _BATCH.validate_python([items[i] for i in kept])
    records, clamped = [], 0
    now = datetime.now(UTC)
    for event in events:
        record = event.model_dump()
        record["event_id"] = event.event_id or uuid.uuid4().hex
        stamp = now if event.timestamp is None else clamp_timestamp(event.timestamp, now)
        clamped += event.timestamp is not None and stamp != event.timestamp
        record["timestamp"] = stamp.isoformat()
        record["variant"] = variant_of(event.recommendation_id)
        records.append(record)
    if clamped:
        logger.warning("%d event timestamps were outside the live window and were clamped", clamped)
    return records, errors, clamped


class EventSink(Protocol):
    """A durable, idempotent event log."""

    backend: str

    async def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    async def read_all(self) -> list[dict[str, Any]]: ...
    async def close(self) -> None: ...


class FileEventSink:
    """Append-only JSON lines, flushed and fsynced per batch; remembers the last ``SEEN_IDS`` ids logged."""

    backend = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        existing, _ = read_jsonl(self.path)
        self.seen: LRUCache[str, bool] = LRUCache(SEEN_IDS)  # bounded: the most recent ids
        for event in existing[-SEEN_IDS:]:
            self.seen[str(event.get("event_id"))] = True
        self._lock = asyncio.Lock()

    def _repair(self) -> None:
        """Set a torn final line (a write cut short, so never acknowledged) aside, keeping the log whole.

        Without this, the next append would join the torn bytes on one line and the first event it
        acknowledged would be unreadable.
        """
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            back = min(size, 1 << 20)
            handle.seek(size - back)
            tail = handle.read(back)
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            keep = size - back + cut + 1 if cut >= 0 else (0 if back == size else size)
            if keep == size:  # no newline in the last MiB of a larger file: not a torn write
                return
            handle.seek(keep)
            torn = handle.read()
            aside = self.path.with_name(f"{self.path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}")
            aside.write_bytes(torn)
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        logger.warning("%s: a torn final write (%d bytes) was set aside in %s", self.path, len(torn), aside)

    def _write(self, lines: str) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    async def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Log the records not seen before; return them once they are on disk."""
        async with self._lock:
            fresh, ids = [], set()
            for record in records:
                event_id = record["event_id"]
                if event_id not in self.seen and event_id not in ids:
                    fresh.append(record)
                    ids.add(event_id)
            if fresh:
                text = "".join(orjson.dumps(r).decode() + "\n" for r in fresh)
                try:
                    await asyncio.to_thread(self._write, text)
                except OSError as exc:
                    raise EventLogUnavailable(f"cannot append to {self.path}: {exc}") from exc
                for event_id in ids:
                    self.seen[event_id] = True
            return fresh

    async def read_all(self) -> list[dict[str, Any]]:
        """Return every logged event."""
        events, _ = await asyncio.to_thread(read_jsonl, self.path)
        return events

    async def close(self) -> None:
        """Nothing to release."""


_APPEND = """
local added = {}
for i = 3, #ARGV, 2 do
  if redis.call('SET', 'orderlift:event-id:' .. ARGV[i], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1])
    added[#added + 1] = ARGV[i]
  end
end
if #added > 0 then redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2]) end
return added
"""


class RedisEventSink:
    """A Redis stream; one Lua script per batch adds each event whose id is new.

    The stream keeps ``retention_days`` of events: each append trims older entries (``XTRIM
    MINID``). Export them for training before then (``orderlift events export``).
    """

    backend = "redis"

    def __init__(
        self, client: aioredis.Redis, stream: str = STREAM_KEY, retention_days: float = 90.0
    ) -> None:
        self.client, self.stream, self.retention_days = client, stream, retention_days
        self._script = client.register_script(_APPEND)

    async def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the records whose id is new; return them once Redis has them."""
        if not records:
            return []
        oldest_ms = int((time.time() - self.retention_days * 86_400) * 1000)
        args: list[Any] = [EVENT_ID_TTL_S, f"{max(oldest_ms, 0)}-0"]
        for record in records:
            args += [record["event_id"], orjson.dumps(record)]
        try:
            added = await self._script(keys=[self.stream], args=args)
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            raise EventLogUnavailable(f"Redis did not take the events: {exc}") from exc
        fresh = {a.decode() if isinstance(a, bytes) else str(a) for a in added}
        return [r for r in records if r["event_id"] in fresh]

    async def read_all(self) -> list[dict[str, Any]]:
        """Return every event of the stream, oldest first."""
        events: list[dict[str, Any]] = []
        start = "-"
        while True:
            batch: Any = await self.client.xrange(self.stream, min=start, max="+", count=10_000)
            if not batch:
                return events
            events.extend(json.loads(fields[b"e"]) for _, fields in batch)
            last = batch[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))

    async def close(self) -> None:
        """Close the client."""
        await self.client.aclose()


def live_keys(user_id: str) -> list[str]:
    """Return the Redis keys of a user's live history: item weights (a hash), owned items (a set)."""
    return [f"orderlift:live:{user_id}", f"orderlift:owned:{user_id}"]


@dataclass
class LiveHistory:
    """One user's live interactions: item -> weight, and the items they carted or bought."""

    weights: dict[str, float] = field(default_factory=dict)
    owned: set[str] = field(default_factory=set)
    complete: bool = True  # False: it could not be read, so an answer built on it is not cached

    def __bool__(self) -> bool:
        return bool(self.weights or self.owned)


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


class LiveStore:
    """Per-user live history, in Redis (shared by workers) or in this process."""

    def __init__(
        self, client: aioredis.Redis | None = None, timeout_s: float = 0.05, retry_after_s: float = 1.0
    ) -> None:
        self.client = client
        self._add = None if client is None else client.register_script(_LIVE_ADD)  # once, not per call
        self.local: OrderedDict[str, LiveHistory] = OrderedDict()  # in-process: the most recent users
        self.timeout_s, self.retry_after_s = timeout_s, retry_after_s
        self._skip_until = 0.0
        self.failures = 0

    async def record(self, records: list[dict[str, Any]]) -> set[str]:
        """Fold events into their users' live history; return the users whose answers changed."""
        touched = [r for r in records if r["type"] in LIVE_WEIGHTS]
        if self.client is None:
            for r in touched:
                live = self.local.setdefault(r["user_id"], LiveHistory())
                self.local.move_to_end(r["user_id"])
                item = r["item_id"]
                if item not in live.weights and len(live.weights) >= LIVE_MAX_ITEMS:
                    continue  # bounded: one user cannot grow without end
                live.weights[item] = live.weights.get(item, 0.0) + LIVE_WEIGHTS[r["type"]]
                if r["type"] in OWNING_TYPES:
                    live.owned.add(item)
            while len(self.local) > LOCAL_USERS:
                self.local.popitem(last=False)
            return {r["user_id"] for r in touched}
        pipe, add = self.client.pipeline(transaction=False), self._add
        assert add is not None  # registered with the client
        for r in touched:
            keys = live_keys(r["user_id"])
            owning = int(r["type"] in OWNING_TYPES)
            args = [r["item_id"], LIVE_WEIGHTS[r["type"]], LIVE_TTL_S, owning, LIVE_MAX_ITEMS]
            await add(keys=keys, args=args, client=pipe)  # queued: the pipeline runs them
        if touched:
            await pipe.execute()
        return {r["user_id"] for r in touched}

    async def get(self, user_id: str) -> LiveHistory:
        """Return a user's live history (empty when unknown or when Redis fails)."""
        if self.client is None:
            return self.local.get(user_id, LiveHistory())
        now = time.monotonic()
        if now < self._skip_until:  # Redis failed a moment ago: answer without live history
            return LiveHistory(complete=False)
        try:
            pipe = self.client.pipeline(transaction=False)
            weights_key, owned_key = live_keys(user_id)
            pipe.hgetall(weights_key)
            pipe.smembers(owned_key)
            weights, owned = await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except aioredis.ResponseError as exc:  # this user's keys are bad, not Redis: no pause for others
            self.failures += 1
            logger.warning("live history of one user unreadable: %s", exc)
            return LiveHistory(complete=False)
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            self._skip_until = now + self.retry_after_s
            logger.warning("live history unavailable for %.1fs: %s", self.retry_after_s, exc)
            return LiveHistory(complete=False)
        return LiveHistory({k.decode(): float(v) for k, v in weights.items()}, {o.decode() for o in owned})
