"""Models of the service's other endpoints: event intake, health and readiness, model info, rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from service.schemas import ENDPOINTS, ID_MAX, N_MAX, Placement

__all__ = ["EventError", "EventsAccepted", "Health", "ModelInfo", "Ready", "Rule", "RuleIn", "RulesResponse"]


class ModelInfo(BaseModel):
    """What is being served."""

    version: str
    source: str
    trained_at: str | None
    model: dict[str, object]
    metrics: dict[str, object]
    data_fingerprint: str | None
    counts: dict[str, object]


class EventError(BaseModel):
    """Why one event of a batch was refused."""

    index: int
    field: str
    reason: str


class EventsAccepted(BaseModel):
    """What happened to a batch of events."""

    accepted: int = Field(description="Newly logged events.")
    duplicates: int = Field(description="Events whose event_id was logged before (not counted twice).")
    rejected: int
    clamped: int = Field(
        0,
        description="Events whose timestamp was outside [now - 30 days, now + 5 min], set to the bound.",
    )
    errors: list[EventError]


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    """Whether the service can answer; with an admin key (or no keys), the state of what it depends on."""

    ready: bool
    model_version: str | None
    details: str | None = None
    model_error: str | None = None
    variants: dict[str, object] | None = None
    last_reload: dict[str, object] | None = None
    events: dict[str, object] | None = None
    rules: dict[str, object] | None = None
    rate_limits: dict[str, object] | None = None
    counters: dict[str, int] | None = None
    cache: dict[str, object] | None = None


class RuleIn(BaseModel):
    """A merchandising rule as a marketer writes it; what each field means for each action.

    ``pin`` puts ``item_ids`` (in that order) from ``position`` (1 = first) on; ``boost`` and
    ``bury`` multiply the score of the target (``factor``: above 1 for a boost, default 2; below 1
    for a bury, default 0.5); ``hide`` keeps the target out of every answer. The target is
    ``item_ids`` and/or every item of ``category``. ``placements`` (endpoints or page slots) limit
    where it applies (empty: everywhere); ``starts_at`` / ``ends_at`` when (open-ended if unset).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "pin", "item_ids": ["i0042"], "position": 1, "placements": ["home"],
                 "ends_at": "2026-12-08T00:00:00Z"},
                {"action": "hide", "category": "phones", "note": "recall"},
            ]
        },
    )  # fmt: skip

    action: Literal["pin", "boost", "bury", "hide"]
    item_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX)]] = Field(
        default_factory=list, max_length=1000
    )
    category: str | None = Field(None, min_length=1, max_length=ID_MAX)
    position: int | None = Field(None, ge=1, le=N_MAX, description="pin only: 1 is the first place.")
    factor: float | None = Field(None, gt=0, le=1000, description="boost (> 1) or bury (< 1) only.")
    placements: list[Placement] = Field(
        default_factory=list,
        max_length=20,
        description=f"Any of {', '.join(ENDPOINTS)} or the storefront's own slots; empty: everywhere.",
    )
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    note: str | None = Field(None, max_length=500)


class Rule(RuleIn):
    """A stored rule."""

    id: str = Field(examples=["r3f2a9c01d4e5"])
    created_at: datetime


class RulesResponse(BaseModel):
    """Every stored rule, and the rule set's version (it changes with every edit)."""

    rules: list[Rule]
    version: int
