"""Health, readiness and the served model's facts."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.schemas import Health, ModelInfo, Ready

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Expose Prometheus metrics (no key: scrapers stay inside the network)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """Answer while the process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready, "description": "Not ready."}})
async def readyz(state: State) -> Response:
    """Say whether a model is loaded, and the state of the cache (200 when ready, else 503)."""
    engine = state.engine
    await state.cache.ping()  # refreshes the backend's health (bounded by its short timeout)
    cache = state.cache.state()
    body = {
        "ready": engine is not None,
        "model_version": None if engine is None else engine.version,
        "model_error": state.load_error,
        "variants": {
            v.name: {
                "weight": v.weight,
                "uri": v.uri,
                "version": state.engines[v.name].version if v.name in state.engines else None,
            }
            for v in state.variants
        },
        "last_reload": state.last_reload,
        "events": {"backend": state.sink.backend},
        "counters": state.counters,
        "cache": {
            "backend": cache.backend,
            "healthy": cache.healthy,
            "last_error": cache.last_error,
            **cache.stats,
        },
    }
    return Response(orjson.dumps(body), status_code=200 if engine else 503, media_type="application/json")


@router.get(
    "/v1/model", response_model=ModelInfo, dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)
async def model_info(state: State) -> dict[str, Any]:
    """Return the served model's version, training time, params, metrics and data fingerprint."""
    engine = state.require()
    manifest = engine.loaded.bundle.manifest
    return {
        "version": engine.version,
        "source": engine.loaded.source,
        "trained_at": manifest.get("trained_at"),
        "model": manifest.get("model", {}),
        "metrics": manifest.get("metrics", {}),
        "data_fingerprint": manifest.get("data", {}).get("fingerprint"),
        "counts": manifest.get("counts", {}),
    }
