"""The A/B report: conversion, order value and revenue per variant, with differences to the control."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from features.attribution import experiment_report
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES

router = APIRouter(
    prefix="/v1", tags=["experiments"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)

COLUMNS = ["event_id", "user_id", "item_id", "type", "timestamp", "order_id", "quantity", "price", "variant"]


def build_report(events: list[dict[str, Any]], control: str | None, confidence: float) -> dict[str, Any]:
    """Return the report over logged events; a control nobody was served falls back to the busiest."""
    frame = pd.DataFrame.from_records(events, columns=COLUMNS)
    if control is not None and control not in set(frame["variant"].dropna()):
        control = None
    return experiment_report(frame, control, confidence)


@router.get("/experiments/report")
async def report(
    state: State,
    control: Annotated[
        str | None,
        Query(max_length=200, description="Default: the first variant; one nobody was served falls back."),
    ] = None,
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.95,
) -> dict[str, Any]:
    """Report users, impressions, clicks, CTR, carts, orders, conversion, AOV and revenue per variant."""
    events = await state.sink.read_all()
    chosen = control or (state.variants[0].name if state.variants else None)
    return await run_in_threadpool(build_report, events, chosen, confidence)
