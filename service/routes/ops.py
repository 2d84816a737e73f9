"""Health, readiness and the served model's facts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.auth import Role, access_error, key_role
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.ops_schemas import Health, ModelInfo, Ready
from service.responses import json_response

router = APIRouter(tags=["operations"])


def _given(request: Request) -> str | None:
    """Return the caller's key: X-API-Key, or a Bearer token (what Prometheus sends)."""
    key = request.headers.get("x-api-key")
    bearer = request.headers.get("authorization", "")
    if key is None and bearer[:7].lower() == "bearer ":
        key = bearer[7:].strip()
    return key


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
async def metrics(request: Request, state: State) -> Response:
    """Expose Prometheus metrics (an admin key when admin keys are set; nginx keeps it inside)."""
    error = access_error(state.settings, "/metrics", _given(request))
    if error is not None:
        raise error
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """Answer while the process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready, "description": "Not ready."}})
async def readyz(request: Request, state: State) -> Response:
    """Say whether a model is loaded (200 when ready, else 503); the details need an admin key.

    Without any key configured (development) the details are public too.
    """
    engine = state.engine
    status = 200 if engine else 503
    summary = {"ready": engine is not None, "model_version": None if engine is None else engine.version}
    settings = state.settings
    if settings.auth_enabled and key_role(settings, _given(request)) is not Role.ADMIN:
        summary["details"] = "send an admin X-API-Key for the details"
        return json_response(summary, status)
    await state.cache.ping()  # refreshes the backend's health (bounded by its short timeout)
    cache = state.cache.state()
    limiter = request.app.state.limiter
    body = {
        **summary,
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
        "rules": state.rules.state(),
        "rate_limits": {"shared": limiter.shared is not None, "degraded": limiter.degraded},
        "counters": state.counters,
        "cache": {
            "backend": cache.backend,
            "healthy": cache.healthy,
            "last_error": cache.last_error,
            **cache.stats,
        },
    }
    return json_response(body, status)


@router.get(
    "/v1/model", response_model=ModelInfo, dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)
async def model_info(state: State) -> dict[str, Any]:
    """Return the served model's version, training time, params, metrics and data fingerprint."""
    engine = state.require()
    manifest = engine.loaded.artifact.manifest
    return {
        "version": engine.version,
        "source": engine.loaded.source,
        "trained_at": manifest.trained_at,
        "model": asdict(manifest.model),
        "metrics": manifest.record.get("metrics", {}),
        "data_fingerprint": manifest.data_fingerprint,
        "counts": manifest.counts,
    }
