"""Live events from the storefront: validated one by one, logged durably, felt at once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from service.cache_keys import user_scope
from service.deps import State, require_key
from service.errors import JSON_BODY_RESPONSES, EventLogDown, InvalidRequest, UnsupportedMediaType
from service.event_log import EventLogUnavailable
from service.events import EventIn, validate_events
from service.ops_schemas import EventsAccepted
from service.responses import json_response

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/v1", tags=["events"], dependencies=[Depends(require_key)], responses=JSON_BODY_RESPONSES
)

MAX_BATCH = 1000
INLINE_BYTES = 16 << 10  # bodies up to this are validated on the loop (a thread hop costs more)
EXAMPLE: list[JsonValue] = [
    {"event_id": "e-1", "user_id": "u0042", "item_id": "i0098", "type": "purchase", "order_id": "o-9",
     "quantity": 1, "price": 806.61, "recommendation_id": "production.4f0c2d0e9f5a4f5c8a0b1c2d3e4f5a6b"},
]  # fmt: skip


class EventsBatch(BaseModel):
    """The documented body of POST /v1/events: up to 1,000 events."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": EXAMPLE}]})

    events: list[EventIn] = Field(max_length=MAX_BATCH)


BODY_SCHEMAS = (EventsBatch,)  # added to the OpenAPI components by the app factory
BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/EventsBatch"},
            "example": {"events": EXAMPLE},
        }
    },
}


def read_batch(raw: bytes, require_id: bool) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], int]:
    """Parse a body of one event or a list; return (events sent, records to log, errors, clamped)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}", field="body") from exc
    if not isinstance(body, list | dict):
        raise InvalidRequest("send one event object or a list of them", field="body", value=str(body)[:100])
    if isinstance(body, dict) and set(body) == {"events"}:  # the documented form
        body = body["events"]
        if not isinstance(body, list):
            raise InvalidRequest("events must be a list of events", field="events", value=str(body)[:100])
    batch = body if isinstance(body, list) else [body]
    if len(batch) > MAX_BATCH:
        raise InvalidRequest(f"at most {MAX_BATCH} events per request", field="body", value=len(batch))
    return len(batch), *validate_events(batch, require_id)


@router.post("/events", status_code=202, response_model=EventsAccepted, openapi_extra={"requestBody": BODY})
async def post_events(state: State, request: Request) -> Response:
    """Log up to 1,000 events (``{"events": [...]}``; one event or a bare list also work).

    202 once the accepted ones are durably appended; errors are reported per event.
    """
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json":  # a web page can post text/plain cross-site without a preflight
        raise UnsupportedMediaType(
            "events are sent as application/json", field="content-type", value=kind or None
        )
    raw = await request.body()
    required = state.settings.event_id_required
    if len(raw) <= INLINE_BYTES:
        size, records, errors, clamped = read_batch(raw, required)
    else:  # parsing and validating up to 1,000 events is milliseconds: not on the event loop
        size, records, errors, clamped = await asyncio.to_thread(read_batch, raw, required)
    try:
        fresh = await state.sink.append(records)
    except EventLogUnavailable as exc:
        raise EventLogDown(f"events were not logged: {exc}") from exc
    try:  # the events are logged: a failure here must not turn the 202 into an error to retry
        catalogs = [engine.scorer.catalog.lookup for engine in state.engines.values()]
        known = [
            r for r in fresh if any(r["item_id"] in lookup for lookup in catalogs)
        ]  # the rest: logged only
        users = await state.live.record(known)
        await state.trends.record(known)
        if users:
            await state.cache.bump(state.settings.cache_ttl_s, *(user_scope(u) for u in sorted(users)))
    except Exception:
        state.counters["live_update_failed"] += 1
        logger.exception("live history or cache invalidation failed for %d logged events", len(fresh))
    state.counters["events_accepted"] += len(fresh)
    state.counters["events_duplicate"] += len(records) - len(fresh)
    state.counters["events_rejected"] += size - len(records)
    payload = {
        "accepted": len(fresh),
        "duplicates": len(records) - len(fresh),
        "rejected": size - len(records),
        "clamped": clamped,
        "errors": errors,
    }
    response = json_response(payload)
    response.status_code = 422 if errors and not records else 202
    return response
