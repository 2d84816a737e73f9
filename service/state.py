"""What a running service holds: the settings, the cache, and the engine of the loaded model."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.bundling import Bundler
from service.cache import Cache
from service.config import Settings
from service.crosssell import CrossSeller
from service.errors import ModelNotReady
from service.loading import LoadedModel
from service.recommender import Scorer

__all__ = ["Engine", "ServiceState", "json_response"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Engine:
    """Everything that answers requests for one loaded model; swapped as a whole."""

    loaded: LoadedModel
    scorer: Scorer
    crosssell: CrossSeller
    bundler: Bundler

    @classmethod
    def build(cls, loaded: LoadedModel, settings: Settings) -> Engine:
        """Precompute the scoring objects of a loaded model."""
        scorer = Scorer(loaded, settings)
        return cls(loaded, scorer, CrossSeller(scorer), Bundler(scorer))

    @property
    def version(self) -> str:
        """Return the served model version."""
        return self.loaded.version


def json_response(body: bytes, cache: str | None = None) -> Response:
    """Return pre-serialised JSON bytes as they are."""
    headers = {"X-Cache": cache} if cache else None
    return Response(body, media_type="application/json", headers=headers)


@dataclass
class ServiceState:
    """The service's mutable state: one engine at a time, the cache, counters."""

    settings: Settings
    cache: Cache
    engine: Engine | None = None
    load_error: str | None = None
    started_at: float = field(default_factory=time.time)
    counters: dict[str, int] = field(default_factory=lambda: {"fallback_popular": 0})
    _pending: set[asyncio.Task[None]] = field(default_factory=set)

    def require(self) -> Engine:
        """Return the engine, or raise ModelNotReady saying why there is none."""
        engine = self.engine
        if engine is None:
            reason = self.load_error or "the model is still loading"
            raise ModelNotReady(f"no model is loaded: {reason}")
        return engine

    async def cached(self, key: str, compute: Callable[[], dict[str, Any]]) -> Response:
        """Answer from the cache, or compute off the event loop, store in the background and answer."""
        hit = await self.cache.get(key)
        if hit is not None:
            return json_response(hit, "hit")
        payload = await run_in_threadpool(compute)
        if payload.get("source") == "popular":
            self.counters["fallback_popular"] += 1
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        task = asyncio.create_task(self.cache.set(key, body, self.settings.cache_ttl_s))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return json_response(body, "miss")

    async def compute(self, compute: Callable[[], Any]) -> Response:
        """Compute off the event loop without caching."""
        payload = await run_in_threadpool(compute)
        return json_response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))
