"""What a running service holds: settings, cache, event log, live history, and one engine per variant.

Variants (which URIs, who lands where) are ``service.variants``; an engine is ``service.engine``.
Reload: a new version is loaded off the event loop, checked (schema, shapes, a smoke
recommendation), then swapped in with one assignment, so requests in flight finish on the engine
they started with. A broken version never replaces a working one; the failure and its reason are
kept for ``/readyz`` and the metrics. ``cached`` is how every answer meets the cache.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from features.kpis import ItemPrices
from features.trending import DAYS
from service.cache import Cache
from service.cache_keys import user_scope
from service.config import Settings
from service.engine import Engine
from service.errors import ModelNotReady
from service.event_log import EventSink
from service.live import LiveHistory, LiveStore
from service.loading import LoadError, current_version, load, load_errors
from service.report_feed import ReportFeed
from service.responses import json_response, with_fresh_id
from service.rule_store import RuleStore
from service.trending import TrendCounter, day_of
from service.variants import Variant, bucket

__all__ = ["ServiceState"]

logger = logging.getLogger(__name__)

WARMING = 2  # new-model answers computed in the background at once after a swap (per worker)


def _freeze_heap() -> None:
    """Move everything alive after a load out of the collector's reach.

    The model, the imports and their ~10^5 objects would otherwise be scanned by every full
    collection: 60-300 ms pauses every second or so under load, the p99 tail of cached answers.
    """
    gc.unfreeze()  # what an earlier freeze kept (old engines among it) can be collected now
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class _Miss:
    """One miss: how to compute it, for whom, the key to store it under, whether to compute inline."""

    compute: Callable[[LiveHistory], dict[str, Any]]
    user_id: str | None
    store_key: str | None
    inline: Callable[[], bool] | None


@dataclass
class ServiceState:
    """The service's mutable state."""

    settings: Settings
    cache: Cache
    sink: EventSink
    live: LiveStore
    rules: RuleStore
    trends: TrendCounter
    variants: list[Variant] = field(default_factory=list)
    engines: dict[str, Engine] = field(default_factory=dict)
    load_error: str | None = None
    started_at: float = field(default_factory=time.time)
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "fallback_popular": 0,
            "fallback_trending": 0,
            "reloads": 0,
            "reloads_failed": 0,
            "events_accepted": 0,
            "events_rejected": 0,
            "events_duplicate": 0,
            "live_update_failed": 0,
        }
    )
    last_reload: dict[str, Any] = field(default_factory=dict)
    _pending: set[asyncio.Task[None]] = field(default_factory=set)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # variant: (version, why) that failed
    report: ReportFeed = field(init=False)
    _flights: dict[str, asyncio.Future[bytes]] = field(default_factory=dict)  # misses being computed
    _previous: dict[str, tuple[str, float]] = field(default_factory=dict)  # variant: (version, swapped at)
    _warming: int = 0
    _trends_at: float = -1e18  # when trending items were last rebuilt (monotonic)

    def __post_init__(self) -> None:
        self.report = ReportFeed(self.sink, self._prices)

    def _prices(self) -> ItemPrices | None:
        """Return the served catalog's list prices and costs (the control's), if a model is loaded."""
        engine = self.engine
        return engine.scorer.catalog.item_prices if engine is not None else None

    @property
    def engine(self) -> Engine | None:
        """Return the control variant's engine (the first), if loaded."""
        return self.engines.get(self.variants[0].name) if self.variants else None

    def require(self, user_id: str | None = None) -> Engine:
        """Return the engine serving ``user_id`` (the control for anonymous requests)."""
        if not self.engines:
            reason = self.load_error or "the model is still loading"
            raise ModelNotReady(f"no model is loaded: {reason}")
        if user_id is None or len(self.variants) == 1:
            engine = self.engine
        else:
            spot, edge, engine = bucket(user_id), 0.0, None
            total = sum(v.weight for v in self.variants)
            for variant in self.variants:
                edge += 100.0 * variant.weight / total
                if spot < edge:
                    engine = self.engines.get(variant.name)
                    break
        return engine or self.engine or next(iter(self.engines.values()))

    async def reload(self, force: bool = False) -> dict[str, Any]:
        """Load every variant whose version changed (all when forced); keep the old one on failure."""
        async with self._reload_lock:
            outcome: dict[str, Any] = {}
            for variant in self.variants:
                old = self.engines.get(variant.name)
                version: str | None = None
                try:
                    version = await run_in_threadpool(self._version, variant)
                    if old is not None and old.version == version and not force:
                        outcome[variant.name] = {"status": "unchanged", "version": version}
                        continue
                    failed = self._failed.get(variant.name)
                    if failed is not None and failed[0] == version and not force:
                        kept = None if old is None else old.version
                        reason = f"{failed[1]} (failed before: not retried until the alias moves)"
                        outcome[variant.name] = {"status": "failed", "reason": reason, "serving": kept}
                        continue
                    engine = await run_in_threadpool(self._load, variant)
                except LoadError as exc:
                    if version is not None:  # this version loaded and failed: not retried until it moves
                        self._failed[variant.name] = (version, str(exc))
                    self.counters["reloads_failed"] += 1
                    kept = None if old is None else old.version
                    outcome[variant.name] = {"status": "failed", "reason": str(exc), "serving": kept}
                    logger.error("reload of %s failed, still serving %s: %s", variant.name, kept, exc)
                    continue
                self._failed.pop(variant.name, None)
                if old is not None and old.version != engine.version:
                    self._previous[variant.name] = (old.version, time.monotonic())
                self.engines[variant.name] = engine  # one assignment: in-flight requests keep the old one
                self.counters["reloads"] += 1
                outcome[variant.name] = {"status": "loaded", "version": engine.version}
                logger.info("variant %s now serves %s", variant.name, engine.version)
            if any(o["status"] == "loaded" for o in outcome.values()):
                await self.refresh_trends(force=True)
                await run_in_threadpool(_freeze_heap)
            self.load_error = next((o["reason"] for o in outcome.values() if o["status"] == "failed"), None)
            self.last_reload = {"at": time.time(), "variants": outcome}
            return outcome

    def _version(self, variant: Variant) -> str:
        """Return the version a variant's URI points at; any failure is a LoadError."""
        tracking = self.settings.mlflow_tracking_uri
        with load_errors(f"{variant.uri}: cannot tell its version", tracking):
            return current_version(variant.uri, tracking)

    def _load(self, variant: Variant) -> Engine:
        """Load and build a variant's engine; any failure is a LoadError, so the old model keeps serving."""
        tracking = self.settings.mlflow_tracking_uri
        with load_errors(f"{variant.uri}: cannot be served", tracking):
            key = self.settings.artifact_signing_key
            secret = key.get_secret_value() if key is not None else None
            loaded = load(variant.uri, tracking, self.settings.verify_artifact, secret)
            return Engine.build(loaded, self.settings, variant.name)

    async def watch(self) -> None:
        """Poll the model URIs and reload what changed, forever."""
        interval = self.settings.reload_interval_s
        while interval > 0:
            await asyncio.sleep(interval)
            try:
                await self.reload()
            except Exception:  # never let the watcher die
                logger.exception("model watcher failed; trying again in %.0fs", interval)

    def _background(self, job: Any) -> None:
        task = asyncio.create_task(job)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def refresh_trends(self, force: bool = False) -> None:
        """Rebuild every engine's trending items from live counts, at most every ``trending_refresh_s``."""
        began = time.monotonic()
        if not force and began - self._trends_at < self.settings.trending_refresh_s:
            return
        self._trends_at = began
        feeds = list({id(e.scorer.trend): e.scorer.trend for e in self.engines.values()}.values())
        if not feeds:
            return
        today = day_of(datetime.now(UTC).isoformat())
        first = max(min(f.last_artifact_day for f in feeds) + 1, today - DAYS + 1)
        try:
            live = await self.trends.days(first, today)
        except Exception as exc:  # the feeds keep their last counts
            logger.warning("trending items not refreshed from live counts: %s", exc)
            return
        for feed in feeds:
            await run_in_threadpool(feed.update, live)

    async def watch_trends(self) -> None:
        """Rebuild trending items every ``trending_refresh_s`` (at least every second), forever."""
        while True:
            await asyncio.sleep(max(self.settings.trending_refresh_s, 1.0))
            try:
                await self.refresh_trends(force=True)
            except Exception:  # never let the watcher die
                logger.exception("rebuilding trending items failed")

    def previous_version(self, variant: str) -> str | None:
        """Return the version a variant served before its last swap, within ``swap_grace_s`` of it."""
        entry = self._previous.get(variant)
        if entry is None:
            return None
        if time.monotonic() - entry[1] > self.settings.swap_grace_s:
            del self._previous[variant]
            return None
        return entry[0]

    async def cached(
        self,
        key: str,
        compute: Callable[[LiveHistory], dict[str, Any]],
        user_id: str | None = None,
        version: str | None = None,
        inline: Callable[[], bool] | None = None,
        previous: tuple[str, str] | None = None,
    ) -> Response:
        """Answer from the cache, or compute, store in the background and answer.

        The computation runs in the thread pool, or on the event loop when ``inline()`` (work too
        small to be worth the hand-off). With ``user_id`` the key is stamped with the user's
        generation, read before their live history: an event (logged, then live history, then a
        new generation) makes every answer computed before it unreadable, even one stored after
        it. An answer built without the live history (it could not be read) is not stored.
        Single flight: concurrent misses of one key (and generation) wait for the first one's
        computation (``X-Cache: shared``) instead of each computing it. Warm swap: ``previous``
        (the same answer's key and version under the model swapped out less than
        ``swap_grace_s`` ago) answers a miss from the old model's cached answer (``X-Cache:
        previous``) while the new answer is computed in the background, at most ``WARMING`` at
        a time, so a reload is not a cliff of misses.
        """
        scope = None if user_id is None else user_scope(user_id)
        hit, store_key = await self.cache.get(key, scope)
        if hit is not None:
            return json_response(with_fresh_id(hit), cache="hit", version=version)
        if previous is not None:
            old, _ = await self.cache.get(previous[0], scope)  # a user's event makes it unreadable too
            if old is not None:
                if self._warming < WARMING:
                    self._warming += 1
                    self._background(self._warm(_Miss(compute, user_id, store_key, inline)))
                return json_response(with_fresh_id(old), cache="previous", version=previous[1])
        flight = store_key or key  # with the generation: never joins an answer from before an event
        leader = self._flights.get(flight)
        if leader is not None:  # the same miss is being computed: wait for it instead of computing
            try:
                return json_response(
                    with_fresh_id(await asyncio.shield(leader)), cache="shared", version=version
                )
            except asyncio.CancelledError:
                if not leader.cancelled():
                    raise  # this request was cancelled
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._flights[flight] = future
        try:
            body = await self._compute(_Miss(compute, user_id, store_key, inline))
        except asyncio.CancelledError:
            future.cancel()  # a waiting request computes for itself
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            if self._flights.get(flight) is future:
                del self._flights[flight]
        future.set_result(body)
        return json_response(body, cache="miss", version=version)

    async def _warm(self, miss: _Miss) -> None:
        """Compute and store the new model's answer in the background; a failure only costs the warmth."""
        try:
            await self._compute(miss)
        except Exception:
            logger.debug("warming an answer of the new model failed", exc_info=True)
        finally:
            self._warming -= 1

    async def _compute(self, miss: _Miss) -> bytes:
        """Compute an answer's bytes on a miss and store them in the background."""
        live = await self.live.get(miss.user_id) if miss.user_id is not None else LiveHistory()
        small = miss.inline is not None and miss.inline()  # asked on a miss only: a hit costs nothing more
        payload = miss.compute(live) if small else await run_in_threadpool(miss.compute, live)
        if payload.get("source") in ("popular", "trending"):
            self.counters[f"fallback_{payload['source']}"] += 1
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        if miss.store_key is None or not live.complete:
            return body
        store = self.cache.set(miss.store_key, body, self.settings.cache_ttl_s)
        if self.cache.in_process:
            await store  # nothing to wait for: cheaper than a task
        else:
            self._background(store)
        return body
