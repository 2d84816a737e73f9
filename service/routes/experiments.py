"""The A/B report (conversion, order value and revenue per variant, with differences to the control),
and what shoppers dismissed: the most dismissed items per category, with their reasons."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from service.deps import State, require_key
from service.errors import ERROR_RESPONSES, EventLogDown
from service.events import EventLogUnavailable
from service.schemas import ID_MAX, N_DEFAULT, NQuery

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
