"""The app factory: settings in, a FastAPI app out; the lifespan loads the models and opens the stores."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.cache import open_cache
from service.config import Settings
from service.errors import install_error_handlers
from service.event_log import EventSink, FileEventSink, RedisEventSink
from service.fastlane import FastLane
from service.gate import Gate
from service.live import LiveStore
from service.loading import LoadError
from service.observability import Metrics, Observability, configure_logging
from service.ratelimit import RateLimiter
from service.routes import docs
from service.routes import modules as route_modules
from service.rule_store import FileRules, RedisRules, RuleStore
from service.state import ServiceState
from service.trending import TrendCounter
from service.variants import parse_variants

__all__ = ["app_from_env", "create_app"]

logger = logging.getLogger(__name__)

REPLAY_CHUNK = 10_000
EVENTS_CONNECTIONS = 32  # per worker, to the events Redis
EVENTS_TIMEOUT_S = 2.0


def _stores(settings: Settings) -> tuple[EventSink, LiveStore, RuleStore, TrendCounter]:
    """Return the event log, the live history, the rules and trend counts: Redis if configured, else local.

    ``events_redis_url`` keeps them apart from the cache, so that cache eviction (a cache Redis runs
    with ``maxmemory-policy allkeys-lru``) can never touch an acknowledged event or a rule.
    """
    url = settings.events_redis_url or settings.redis_url
    if url:
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=EVENTS_CONNECTIONS,
            timeout=EVENTS_TIMEOUT_S,  # longest wait for a free connection: then 503, never a pile-up
            socket_timeout=EVENTS_TIMEOUT_S,
            socket_connect_timeout=EVENTS_TIMEOUT_S,
        )
        client = aioredis.Redis.from_pool(pool)
        live = LiveStore(client, settings.redis_timeout_s * 4, settings.redis_retry_after_s)
        retry = settings.redis_retry_after_s
        sink = RedisEventSink(client, retention_days=settings.event_retention_days, retry_after_s=retry)
        return sink, live, RuleStore(RedisRules(client)), TrendCounter(client)
    local = FileEventSink(settings.event_log), LiveStore()
    return *local, RuleStore(FileRules(settings.rules_path)), TrendCounter()


async def _warm_report(state: ServiceState) -> None:
    """Fold the event log into the experiment report once, in the background; log a failure."""
    try:
        await state.report.catch_up()
    except Exception as exc:  # the report catches up on its next request instead
        logger.warning("experiment report not warmed: %s", exc)


def _document(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """Add body models that routes read themselves (not through FastAPI) to the OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            found = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in found.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components.setdefault(model.__name__, found)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operation_id(route: APIRoute) -> str:
    """Name each operation after its function, so generated clients read ``user_recommendations``."""
    return route.name


@asynccontextmanager
async def _lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Open the stores, load the models, replay the embedded log; close everything at shutdown."""
    cache = open_cache(
        settings.redis_url,
        socket_timeout_s=settings.redis_timeout_s,
        retry_after_s=settings.redis_retry_after_s,
        max_entries=settings.cache_max_entries,
        max_bytes=settings.cache_max_bytes,
    )
    sink, live, rules, trends = _stores(settings)
    state = ServiceState(settings, cache, sink, live, rules, trends)
    await rules.refresh()
    app.state.orderlift = state
    if not settings.auth_enabled:
        logger.warning("no ORDERLIFT_API_KEYS set: /v1 is open (fine for development only)")
    try:
        state.variants = parse_variants(settings)
        await state.reload(force=True)
    except LoadError as exc:
        state.load_error = str(exc)
    if state.load_error:
        logger.error("serving without (some) models: %s", state.load_error)
    if isinstance(sink, FileEventSink):
        events = await sink.read_all()  # live history survives a restart
        for start in range(0, len(events), REPLAY_CHUNK):  # trimmed to LOCAL_USERS as it goes
            await live.record(events[start : start + REPLAY_CHUNK])
    watcher = asyncio.create_task(state.watch())
    warm = asyncio.create_task(_warm_report(state))  # the first report need not read the whole log
    background = [asyncio.create_task(job) for job in (rules.watch(), state.watch_trends())]
    yield
    for task in (watcher, warm, *background):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await cache.close()
    await sink.close()


def create_app(settings: Settings) -> FastAPI:
    """Build the service for ``settings``; refuse a production one without keys (``open_refusal``)."""
    if settings.environment == "production" and (refusal := settings.open_refusal()):
        raise RuntimeError(refusal)

    app = FastAPI(
        title="orderlift",
        version="0.1.0",
        summary="Recommendations that raise average order value.",
        lifespan=functools.partial(_lifespan, settings=settings),
        docs_url=None,  # service/routes/docs.py serves /docs from local assets; no ReDoc (CDN only)
        redoc_url=None,
        # Requests are counted and timed by Observability (Prometheus); FastAPI's own OpenTelemetry
        # hooks, unconfigured here, would still look up their providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        generate_unique_id_function=_operation_id,
    )
    install_error_handlers(app)
    state_of = lambda: getattr(app.state, "orderlift", None)  # noqa: E731 - set by the lifespan
    metrics = Metrics(state_of)
    app.state.metrics = metrics
    found = route_modules()
    for module in found:
        app.include_router(module.router)
    app.mount(docs.STATIC, docs.assets(), name="swagger")
    _document(app, tuple(model for module in found for model in getattr(module, "BODY_SCHEMAS", ())))
    routes = {r.path: r for module in found for r in module.router.routes if isinstance(r, APIRoute)}
    app.add_middleware(FastLane, state_of=state_of, routes=routes)  # inside Observability: counted, logged
    app.state.limiter = RateLimiter(settings)
    app.add_middleware(Gate, settings=settings, limiter=app.state.limiter)  # before anything reads a body
    app.add_middleware(Observability, metrics=metrics, log_all=settings.access_log == "all")
    return app


def app_from_env() -> FastAPI:
    """Build the app from the environment (uvicorn's factory), logging JSON lines."""
    configure_logging()
    return create_app(Settings())
