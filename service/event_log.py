"""The live event log: a durable append, idempotent by ``event_id``, and reading it back.

Durability: an accepted batch is appended before the service answers 202: to a Redis stream
(``orderlift:events``) when Redis is configured, else to a JSON-lines file that is flushed and
fsynced per request. ``event_id`` makes retries idempotent: Redis keeps a marker per id for
``EVENT_ID_TTL_S`` and adds an event only if its marker is new (one Lua script per batch); the file
mode keeps the ids it has seen (one process: several workers need Redis). ``read_since`` pages
through the log after a cursor, for readers that follow it (the experiment report). Each user's
live history is in ``service.live``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
import redis.asyncio as aioredis
from cachetools import LRUCache
from redis.exceptions import ConnectionError as RedisConnectionError

from features.eventlog import (
    STREAM_KEY,
    STREAM_PAGE,
    parse_entries,
    read_jsonl,
    stream_page,
    stream_start,
)
from service.breaker import Breaker

__all__ = ["EventLogUnavailable", "EventSink", "FileEventSink", "Page", "RedisEventSink", "marker_of"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


EVENT_ID_TTL_S = 7 * 24 * 3600
MARKER_PREFIX = "orderlift:event-id:"
PAGE_BYTES = 8 << 20  # the file log is read after a cursor in pieces of at most this
SEEN_IDS = 1_000_000  # event ids the file log remembers for idempotency (the most recent)


class EventLogUnavailable(RuntimeError):
    """The event log cannot take events now; nothing was acknowledged."""


def marker_of(record: dict[str, Any]) -> str:
    """Return the idempotency marker of an event: a digest of its user and its ``event_id``.

    Scoped per user, so an id one user's events took never turns another user's event into a
    "duplicate" (ids like ``e-1`` are easy to guess).
    """
    key = orjson.dumps([str(record.get("user_id")), str(record.get("event_id"))])
    return hashlib.sha256(key).hexdigest()


@dataclass(frozen=True)
class Page:
    """Events logged after a cursor, the cursor after them, and entries that were not JSON events."""

    events: list[dict[str, Any]]
    cursor: str | None
    bad: int = 0
    last: bool = True  # nothing more after this page, for now


class EventSink(Protocol):
    """A durable, idempotent event log."""

    backend: str

    async def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]: ...
    async def read_all(self) -> list[dict[str, Any]]: ...
    async def read_since(self, cursor: str | None) -> Page: ...
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
            self.seen[marker_of(event)] = True
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
        created = not self.path.exists()
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        if created:  # the new file's directory entry must survive a crash too
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    async def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Log the records not seen before; return them once they are on disk."""
        async with self._lock:
            fresh, ids = [], set()
            for record in records:
                marker = marker_of(record)
                if marker not in self.seen and marker not in ids:
                    fresh.append(record)
                    ids.add(marker)
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

    async def read_since(self, cursor: str | None) -> Page:
        """Return up to ``PAGE_BYTES`` of whole lines after byte offset ``cursor``, parsed off the loop."""
        return await asyncio.to_thread(self._read_since, int(cursor or 0))

    def _read_since(self, offset: int) -> Page:
        if not self.path.is_file():
            return Page([], str(offset))
        with self.path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(PAGE_BYTES)
        whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next call
        events, bad = parse_entries([line for line in whole.split(b"\n") if line.strip()])
        return Page(events, str(offset + len(whole)), bad, last=len(chunk) < PAGE_BYTES)

    async def close(self) -> None:
        """Nothing to release."""


_APPEND = """
local added = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('XADD', KEYS[1], '*', 'e', ARGV[i + 1])
    redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
    added[#added + 1] = i - 2
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
        self,
        client: aioredis.Redis,
        stream: str = STREAM_KEY,
        retention_days: float = 90.0,
        retry_after_s: float = 1.0,
    ) -> None:
        self.client, self.stream, self.retention_days = client, stream, retention_days
        self._script = client.register_script(_APPEND)
        self.breaker = Breaker("event log", retry_after_s)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call through the breaker; EventLogUnavailable (a 503) when it cannot."""
        if not self.breaker.allow():
            raise EventLogUnavailable(f"{what}: Redis failed a moment ago ({self.breaker.last_error})")
        try:
            result = await call()
        except RedisConnectionError as exc:
            if "No connection available" not in str(exc):  # a busy pool is load, not an outage
                self.breaker.failed(exc)
            raise EventLogUnavailable(f"{what}: {exc}") from exc
        except (aioredis.RedisError, OSError, TimeoutError) as exc:
            self.breaker.failed(exc)
            raise EventLogUnavailable(f"{what}: {exc}") from exc
        self.breaker.succeeded()
        return result

    async def append(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add the records whose id is new; return them once Redis has them."""
        if not records:
            return []
        oldest_ms = int((time.time() - self.retention_days * 86_400) * 1000)
        args: list[Any] = [EVENT_ID_TTL_S, f"{max(oldest_ms, 0)}-0", *map(orjson.dumps, records)]
        keys = [self.stream, *(MARKER_PREFIX + marker_of(r) for r in records)]
        added = await self._call("Redis did not take the events", lambda: self._script(keys=keys, args=args))
        return [records[int(i)] for i in added]

    async def read_all(self) -> list[dict[str, Any]]:
        """Return every event of the stream, oldest first (entries that are not events skipped)."""
        events: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await self.read_since(cursor)
            events.extend(page.events)
            cursor = page.cursor
            if page.last:
                return events

    async def read_since(self, cursor: str | None) -> Page:
        """Return up to ``STREAM_PAGE`` entries after stream id ``cursor``, parsed off the loop."""
        start = stream_start(cursor)
        batch: Any = await self._call(
            "Redis did not return the events",
            lambda: self.client.xrange(self.stream, min=start, max="+", count=STREAM_PAGE),
        )
        raw, after, last = stream_page(batch, cursor)
        events, bad = await asyncio.to_thread(parse_entries, raw) if raw else ([], 0)
        return Page(events, after, bad, last=last)

    async def close(self) -> None:
        """Close the client."""
        await self.client.aclose()
