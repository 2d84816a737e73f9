"""The A/B report (conversion, order value and revenue per variant, with differences to the control),
the shop's KPIs per week or month (from the training data and from live events), and what shoppers
dismissed: the most dismissed items per category, with their reasons."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from features.kpis import FORMULAS, Period, series_csv
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES, EventLogDown
from service.event_log import EventLogUnavailable
from service.schemas import ID_MAX, N_DEFAULT, NQuery

logger = logging.getLogger(__name__)

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


@router.get(
    "/kpis",
    response_model=dict[str, Any],
    responses={200: {"content": {"text/csv": {}}, "description": "KPIs as JSON, or CSV with format=csv."}},
)
async def kpis(
    state: State,
    by: Annotated[Literal["week", "month"], Query(description="Period of the series.")] = "month",
    format: Annotated[Literal["json", "csv"], Query(description="csv: a file download.")] = "json",
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.95,
) -> Any:
    """Return conversion, AOV, purchase frequency and discount rate per period: training data and live."""
    found = await shop_kpis(state, by, confidence)
    if format == "csv":
        headers = {"Content-Disposition": f'attachment; filename="kpis-{by}.csv"'}
        return Response(kpis_csv(found), media_type="text/csv", headers=headers)
    return found


async def shop_kpis(state: State, by: Period, confidence: float = 0.95) -> dict[str, Any]:
    """Return the KPI series of the served model's training data and of live events.

    A live event log that cannot be read leaves ``live`` None and says why in ``live_error``: the
    training data's figures are still answered.
    """
    engine = state.require()
    training = (engine.scorer.loaded.artifact.kpis or {}).get(by)
    live, error = None, None
    control = state.variants[0].name if state.variants else None
    try:
        live = await state.report.kpis(by, control, confidence)
    except EventLogUnavailable as exc:
        logger.warning("KPIs without live events: the event log cannot be read: %s", exc)
        error = f"the event log cannot be read: {exc}"
    return {
        "by": by,
        "training": training,
        "live": live,
        "live_error": error,
        "formulas": FORMULAS,
        "model_version": engine.version,
    }


def kpis_csv(found: dict[str, Any]) -> str:
    """Return both series as one CSV: a ``source`` column (training or live), then the KPI columns."""
    return series_csv({"training": found["training"], "live": (found["live"] or {}).get("series")})


@router.get("/experiments/dismissals")
async def dismissals(
    state: State,
    category: Annotated[str | None, Query(max_length=ID_MAX, description="Only this category.")] = None,
    n: NQuery = N_DEFAULT,
) -> dict[str, Any]:
    """Return the most dismissed items of each category ("not interested"), with counts per reason."""
    return await most_dismissed(state, category, n)


async def most_dismissed(state: State, category: str | None, n: int) -> dict[str, Any]:
    """Return the most dismissed items of each category (or of one), with counts per reason."""
    engine = state.require()
    try:
        found = await state.report.dismissals()
    except EventLogUnavailable as exc:
        raise EventLogDown(f"the event log cannot be read for the dismissals: {exc}") from exc
    catalog = engine.scorer.catalog
    by_category: dict[str, list[dict[str, Any]]] = {}
    for item, reasons in found.items():
        row = catalog.lookup.get(item)
        facts = (
            catalog.describe(row) if row is not None else {"item_id": item, "name": item, "category": None}
        )
        if category is not None and facts.get("category") != category:
            continue
        entry = {**facts, "dismissals": sum(reasons.values()), "reasons": dict(sorted(reasons.items()))}
        by_category.setdefault(facts.get("category") or "", []).append(entry)
    return {
        "categories": [
            {
                "category": name or None,
                "items": sorted(items, key=lambda i: (-i["dismissals"], i["item_id"]))[:n],
            }
            for name, items in sorted(by_category.items())
        ],
        "model_version": engine.version,
    }
