"""The A/B report: conversion, order value and revenue per variant, with differences to the control."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from service.deps import State, require_key
from service.errors import ERROR_RESPONSES, EventLogDown
from service.events import EventLogUnavailable
from service.schemas import ID_MAX

router = APIRouter(
    prefix="/v1", tags=["experiments"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)


@router.get("/experiments/report")
async def experiment_report(
    state: State,
    control: Annotated[
        str | None,
        Query(max_length=ID_MAX, description="Default: the first variant; one nobody was served falls back."),
    ] = None,
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.95,
) -> dict[str, Any]:
    """Report users, impressions, clicks, CTR, carts, orders, conversion, AOV and revenue per variant."""
    chosen = control or (state.variants[0].name if state.variants else None)
    try:
        return await state.report.report(chosen, confidence)
    except EventLogUnavailable as exc:
        raise EventLogDown(f"the event log cannot be read for the report: {exc}") from exc
