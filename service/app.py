"""The app factory: settings in, a FastAPI app out; the lifespan loads the model and opens the cache."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from service.cache import open_cache
from service.config import Settings
from service.errors import install_error_handlers
from service.loading import LoadError, load
from service.routes import bundles, cart, items, ops, users
from service.state import Engine, ServiceState

__all__ = ["app_from_env", "create_app", "load_engine"]

logger = logging.getLogger(__name__)


def load_engine(settings: Settings) -> Engine:
    """Load MODEL_URI and build its engine; raise LoadError saying why not."""
    if not settings.model_uri:
        raise LoadError("ORDERLIFT_MODEL_URI is not set (a bundle directory or models:/NAME@ALIAS)")
    loaded = load(settings.model_uri, settings.mlflow_tracking_uri, settings.verify_bundle)
    return Engine.build(loaded, settings)


def create_app(settings: Settings) -> FastAPI:
    """Build the service for ``settings``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cache = open_cache(
            settings.redis_url,
            socket_timeout_s=settings.redis_timeout_s,
            retry_after_s=settings.redis_retry_after_s,
            max_entries=settings.cache_max_entries,
        )
        state = ServiceState(settings, cache)
        app.state.orderlift = state
        if not settings.auth_enabled:
            logger.warning("no ORDERLIFT_API_KEYS set: /v1 is open (fine for development only)")
        try:
            state.engine = await run_in_threadpool(load_engine, settings)
        except LoadError as exc:
            state.load_error = str(exc)
            logger.error("serving without a model: %s", exc)
        yield
        await cache.close()

    app = FastAPI(
        title="orderlift",
        version="0.1.0",
        summary="Recommendations that raise average order value.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (users, items, cart, bundles, ops):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Build the app from the environment (uvicorn's factory)."""
    return create_app(Settings())
