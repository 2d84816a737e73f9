"""Live events as the service logs them, and their conversion to the pipeline's event format.

A logged event is a JSON object: ``event_id``, ``user_id``, ``item_id``, ``type`` (view, cart,
purchase, click, impression), ``timestamp`` (ISO 8601, UTC), ``order_id``, ``quantity``, ``price``,
``recommendation_id`` and ``variant`` (the A/B variant encoded in the recommendation id as
``{variant}.{hex}``). Embedded mode keeps them in a JSON-lines file, Redis mode in a stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from features.schema import PIPELINE_TYPES

__all__ = [
    "STREAM_KEY",
    "parse_entries",
    "read_jsonl",
    "read_stream",
    "served_by",
    "to_pipeline_frame",
    "variant_of",
]

logger = logging.getLogger(__name__)

STREAM_KEY = "orderlift:events"
_PIPELINE_TYPE = {live.value: trained.value for live, trained in PIPELINE_TYPES.items()}


def served_by(recommendation_id: str | None) -> tuple[str | None, str | None, str | None]:
    """Return the variant, placement and channel a recommendation id carries (None where absent).

    Ids are ``{variant}.{placement}.{channel}.{hex}`` (``-`` for no placement or channel); ids
    minted before placements were ``{variant}.{hex}`` and carry the variant only.
    """
    if not recommendation_id or "." not in recommendation_id:
        return None, None, None
    parts = recommendation_id.rsplit(".", 3)
    if len(parts) < 4:
        return parts[0] or None, None, None
    variant, placement, channel, _ = parts
    return (
        variant or None,
        None if placement in ("", "-") else placement,
        None if channel in ("", "-") else channel,
    )


def variant_of(recommendation_id: str | None) -> str | None:
    """Return the variant encoded in a recommendation id, if any."""
    return served_by(recommendation_id)[0]


def parse_entries(raw: Iterable[bytes | str]) -> tuple[list[dict[str, Any]], int]:
    """Return the JSON objects among raw log entries (blank ones skipped) and how many were not one."""
    events, bad = [], 0
    for entry in raw:
        if not entry.strip():
            continue
        try:
            event = orjson.loads(entry)
        except orjson.JSONDecodeError:
            bad += 1
            continue
        if isinstance(event, dict):
            events.append(event)
        else:
            bad += 1
    return events, bad


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Read a JSON-lines event log; return (events, lines that were not valid JSON objects)."""
    path = Path(path)
    if not path.exists():
        return [], 0
    with path.open("rb") as handle:
        events, bad = parse_entries(handle)
    if bad:
        logger.warning("%s: %d lines are not JSON events (a torn final write?)", path, bad)
    return events, bad


STREAM_PAGE = 10_000  # stream entries read per XRANGE


def stream_start(cursor: str | None) -> str:
    """Return XRANGE's ``min`` for the entries after stream id ``cursor`` (all, when None)."""
    return "-" if cursor is None else "(" + cursor


def stream_page(batch: Any, cursor: str | None) -> tuple[list[bytes], str | None, bool]:
    """Return an XRANGE page's raw events, the cursor after it, and whether it was the last page."""
    if not batch:
        return [], cursor, True
    last = batch[-1][0]
    after = last.decode() if isinstance(last, bytes) else str(last)
    return [fields.get(b"e", b"") for _, fields in batch], after, len(batch) < STREAM_PAGE


def read_stream(redis_url: str, stream: str = STREAM_KEY) -> list[dict[str, Any]]:
    """Read every event of a Redis stream, oldest first (entries that are not events skipped)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    events: list[dict[str, Any]] = []
    cursor, last = None, False
    try:
        while not last:
            batch = client.xrange(stream, min=stream_start(cursor), max="+", count=STREAM_PAGE)
            raw, cursor, last = stream_page(batch, cursor)
            events.extend(parse_entries(raw)[0])
    finally:
        client.close()
    return events


def to_pipeline_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """Return views, carts, purchases and dismissals in the pipeline's columns; clicks count as views."""
    columns = ["user_id", "item_id", "event_type", "timestamp", "order_id", "quantity", "price"]
    frame = pd.DataFrame(events)
    if frame.empty or "type" not in frame.columns:
        return pd.DataFrame(columns=columns)
    frame = frame[frame["type"].isin(list(_PIPELINE_TYPE))].copy()
    frame["event_type"] = frame["type"].map(_PIPELINE_TYPE)
    for name in columns:
        if name not in frame.columns:
            frame[name] = None
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    return frame[columns].reset_index(drop=True)
