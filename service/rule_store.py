"""Where the rule set lives, shared by every worker: Redis when configured, else a JSON file.

The set is one JSON document ``{"version": N, "rules": [...]}``: under ``orderlift:rules`` (with
``orderlift:rules:version`` beside it) in the events Redis, which never evicts, or in
``ORDERLIFT_RULES_FILE`` (replaced atomically under a lock, so local workers share it and a
restart keeps it). An edit rewrites the document with the next version in one transaction. Every
worker checks the version every ``REFRESH_S`` seconds and reads the document when it changed, so
an edit is in force everywhere within a second; the worker that made it reads it at once. When the
store cannot be read, the last rule set read stays in force and ``/readyz`` says so; an edit then
answers 503 and changes nothing.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError
from starlette.concurrency import run_in_threadpool

from service.config import Settings
from service.errors import InvalidRequest, RuleStoreDown
from service.ops_schemas import Rule
from service.rules import RuleBook

__all__ = [
    "DOC",
    "MAX_RULES",
    "REFRESH_S",
    "FileRules",
    "RedisRules",
    "RuleStore",
    "parse_rules",
    "read_rules",
]

logger = logging.getLogger(__name__)

REFRESH_S = 0.25
MAX_RULES = 1000
DOC, VERSION = "orderlift:rules", "orderlift:rules:version"

Change = Callable[[list[Rule]], list[Rule]]


def parse_rules(raw: str | bytes | None) -> RuleBook:
    """Return the rule set a stored document holds (an empty one when there is none)."""
    if not raw:
        return RuleBook()
    doc = json.loads(raw)
    return RuleBook(tuple(Rule.model_validate(r) for r in doc["rules"]), int(doc["version"]))


def read_rules(settings: Settings) -> RuleBook:
    """Return the rules in force where the service keeps them (its events Redis, else the file).

    For commands outside the service (precompute, exports); a Redis that cannot be read raises.
    """
    url = settings.events_redis_url or settings.redis_url
    if not url:
        try:
            return parse_rules(settings.rules_path.read_text())
        except FileNotFoundError:
            return RuleBook()
    client = redis.Redis.from_url(str(url), socket_timeout=10)
    try:
        return parse_rules(client.get(DOC))
    finally:
        client.close()


def _dump(rules: list[Rule], version: int) -> str:
    return json.dumps({"version": version, "rules": [r.model_dump(mode="json") for r in rules]})


class Backend(Protocol):
    """A place the rule document lives."""

    name: str

    async def version(self) -> int | None:
        """Return the stored version (None when nothing is stored yet)."""

    async def read(self) -> RuleBook:
        """Return the stored rule set."""

    async def update(self, change: Change) -> RuleBook:
        """Apply ``change`` to the stored rules and store them with the next version, atomically."""


class RedisRules:
    """The rule document in Redis, edited in a WATCH/MULTI transaction."""

    name = "redis"

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def version(self) -> int | None:
        """Return the stored version."""
        raw = await self.client.get(VERSION)
        return None if raw is None else int(raw)

    async def read(self) -> RuleBook:
        """Return the stored rule set."""
        return parse_rules(await self.client.get(DOC))

    async def update(self, change: Change) -> RuleBook:
        """Rewrite the document with the next version; retried when another worker wrote first."""
        async with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(DOC)
                    book = parse_rules(await pipe.get(DOC))
                    rules, version = change(list(book.rules)), book.version + 1
                    pipe.multi()
                    pipe.set(DOC, _dump(rules, version))
                    pipe.set(VERSION, version)
                    await pipe.execute()
                    return RuleBook(tuple(rules), version)
                except WatchError:
                    continue


class FileRules:
    """The rule document in a JSON file, replaced atomically under an exclusive lock."""

    name = "file"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    async def version(self) -> int | None:
        """Return a stamp of the file (it changes with every rewrite), or None when there is none."""
        try:
            stat = await run_in_threadpool(os.stat, self.path)
        except FileNotFoundError:
            return None
        return hash((stat.st_ino, stat.st_mtime_ns, stat.st_size))

    async def read(self) -> RuleBook:
        """Return the stored rule set."""
        return await run_in_threadpool(self._read)

    def _read(self) -> RuleBook:
        try:
            return parse_rules(self.path.read_text())
        except FileNotFoundError:
            return RuleBook()

    async def update(self, change: Change) -> RuleBook:
        """Rewrite the file with the next version under the lock (other workers wait)."""
        return await run_in_threadpool(self._update, change)

    def _update(self, change: Change) -> RuleBook:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(self.path.name + ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            book = self._read()
            rules, version = change(list(book.rules)), book.version + 1
            staging = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with staging.open("w") as out:
                out.write(_dump(rules, version))
                out.flush()
                os.fsync(out.fileno())
            staging.replace(self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return RuleBook(tuple(rules), version)


class RuleStore:
    """The rule set in force in this worker, kept in step with its backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.book = RuleBook()
        self._seen: int | None = None
        self.last_error: str | None = None
        self.checked_at = 0.0

    async def refresh(self) -> None:
        """Read the rule set when its version changed; keep the last one when the store fails."""
        try:
            version = await self.backend.version()
            if version != self._seen:
                self.book = await self.backend.read() if version is not None else RuleBook()
                self._seen = version
            self.last_error = None
        except (RedisError, OSError, ValueError, KeyError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.warning("rules not refreshed (the last ones read stay in force): %s", self.last_error)
        self.checked_at = time.time()

    async def watch(self) -> None:
        """Refresh every ``REFRESH_S`` seconds, forever."""
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)

    async def _update(self, change: Change) -> RuleBook:
        try:
            book = await self.backend.update(change)
        except (RedisError, OSError) as exc:
            raise RuleStoreDown(
                f"the rule store cannot be written now ({type(exc).__name__}); nothing changed"
            ) from exc
        self.book, self._seen = book, await self.backend.version()
        return book

    async def add(self, rule: Rule) -> RuleBook:
        """Store a new rule; refuse one past ``MAX_RULES``."""

        def append(rules: list[Rule]) -> list[Rule]:
            if len(rules) >= MAX_RULES:
                raise InvalidRequest(f"at most {MAX_RULES} rules are kept; delete some first",
                                     field="rules", value=len(rules))  # fmt: skip
            return [*rules, rule]

        return await self._update(append)

    async def delete(self, rule_id: str) -> bool:
        """Remove a rule; return whether it existed."""
        found = False

        def remove(rules: list[Rule]) -> list[Rule]:
            nonlocal found
            kept = [r for r in rules if r.id != rule_id]
            found = len(kept) < len(rules)
            return kept

        await self._update(remove)
        return found

    def state(self) -> dict[str, Any]:
        """Return the store's health and the rule set in force (for /readyz)."""
        return {
            "backend": self.backend.name,
            "healthy": self.last_error is None,
            "last_error": self.last_error,
            "version": self.book.version,
            "rules": len(self.book.rules),
        }
