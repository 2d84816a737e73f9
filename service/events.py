"""Live events as the API takes them: one model per event, checked one by one, timestamps clamped.

What an accepted batch becomes, and where it is kept, is ``service.event_log``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from features.eventlog import (
    served_by,
)
from features.schema import LiveEventType
from service.schemas import ID_MAX, PLACEMENT_PATTERN

__all__ = ["EventIn", "clamp_timestamp", "kept_indices", "validate_events"]

logger = logging.getLogger(__name__)

MAX_EVENT_AGE = timedelta(days=30)  # a live event's timestamp is clamped to at most this old...
MAX_CLOCK_SKEW = timedelta(minutes=5)  # ...and at most this far in the future


REASON_MAX = 80  # characters of a dismissal's reason


class EventIn(BaseModel):
    """One event sent by the storefront."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(
        None, min_length=1, max_length=ID_MAX, description="Makes retries idempotent."
    )
    user_id: str = Field(min_length=1, max_length=ID_MAX)
    item_id: str = Field(min_length=1, max_length=ID_MAX)
    type: LiveEventType
    timestamp: datetime | None = Field(None, description="ISO 8601; naive means UTC; default: now.")
    order_id: str | None = Field(None, min_length=1, max_length=ID_MAX)
    quantity: float | None = Field(None, gt=0, le=1_000_000, strict=True)
    price: float | None = Field(None, ge=0, le=1_000_000_000, strict=True)
    recommendation_id: str | None = Field(None, min_length=1, max_length=ID_MAX)
    placement: str | None = Field(
        None,
        pattern=PLACEMENT_PATTERN,
        description="The page slot of the event (default: the id's).",
    )
    channel: str | None = Field(
        None, pattern=PLACEMENT_PATTERN, description="The channel (web, app, email...; default: the id's)."
    )
    reason: str | None = Field(
        None,
        min_length=1,
        max_length=REASON_MAX,
        description="Why a shopper dismissed an item (dismiss only).",
    )

    @field_validator("timestamp", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        """Accept only an ISO 8601 string, as the schema says (pydantic would read a number as epoch)."""
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError(f"timestamp must be an ISO 8601 string, got {type(value).__name__} {value!r}")
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Read naive times as UTC; a time beyond datetime's range in UTC becomes its nearest end."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # year 1 east of UTC, or 9999 west of it
            return (datetime.min if value.year < 5000 else datetime.max).replace(tzinfo=UTC)


def clamp_timestamp(value: datetime, now: datetime) -> datetime:
    """Return ``value`` within ``[now - MAX_EVENT_AGE, now + MAX_CLOCK_SKEW]`` (live events only)."""
    return min(max(value, now - MAX_EVENT_AGE), now + MAX_CLOCK_SKEW)


_BATCH = TypeAdapter(list[EventIn])
REQUIRED_ID = "required (ORDERLIFT_EVENT_ID_REQUIRED): a client id makes retries safe"


def kept_indices(n: int, bad: set[Any]) -> list[int]:
    """Return the positions of a batch of ``n`` that passed validation."""
    return [i for i in range(n) if i not in bad]


def validate_events(
    raw: Sequence[Any], require_id: bool = False
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Validate each event on its own; return (records to log, errors with index, field, reason, clamped).

    With ``require_id`` an event without ``event_id`` is an error (only a client id makes a retry
    after an ambiguous 503 or a timeout safe); otherwise it gets a random one.

    The batch is validated in one call; when some events are bad, their errors are reported and
    the rest is validated again without them. A timestamp outside ``[now - 30 days, now + 5 min]``
    (a bad clock, or history that belongs in the training files) is set to the nearest bound and
    counted, so no single event can become the "latest" that decay and holdouts are measured from.
    """
    items, errors, bad = list(raw), [], set()
    try:
        events = _BATCH.validate_python(items)
    except ValidationError as exc:
        for err in exc.errors():
            index, *where = err.get("loc", ("?",))
            bad.add(index)
            field = ".".join(str(p) for p in where) or "event"
            errors.append({"index": index, "field": field, "reason": err.get("msg", "invalid")})
        events = _BATCH.validate_python([items[i] for i in kept_indices(len(items), bad)])
    if require_id:
        missing = [
            i for i, event in zip(kept_indices(len(items), bad), events, strict=True) if not event.event_id
        ]
        for index in missing:
            errors.append({"index": index, "field": "event_id", "reason": REQUIRED_ID})
        events = [e for e in events if e.event_id]
    records, clamped = [], 0
    now = datetime.now(UTC)
    for event in events:
        record = event.model_dump()
        record["type"] = event.type.value  # a plain string in the log, as the schema documents
        record["event_id"] = event.event_id or uuid.uuid4().hex
        stamp = now if event.timestamp is None else clamp_timestamp(event.timestamp, now)
        clamped += event.timestamp is not None and stamp != event.timestamp
        record["timestamp"] = stamp.isoformat()
        variant, placement, channel = served_by(event.recommendation_id)
        record["variant"] = variant
        record["placement"] = event.placement or placement
        record["channel"] = event.channel or channel
        records.append(record)
    if clamped:
        logger.warning("%d event timestamps were outside the live window and were clamped", clamped)
    return records, errors, clamped
