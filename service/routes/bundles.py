"""Bundles for marketers, as JSON or as a CSV download."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from service.answers import View
from service.bundling import BundleQuery
from service.deps import State, require_key
from service.errors import ERROR_RESPONSES
from service.responses import json_response
from service.schemas import ID_MAX, BundlesResponse, ChannelQuery, MaxPerCategory, NQuery, PlacementQuery

router = APIRouter(
    prefix="/v1", tags=["marketing"], dependencies=[Depends(require_key)], responses=ERROR_RESPONSES
)

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "Bundles as JSON, or CSV with format=csv."}
}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """Return text that a spreadsheet shows as text, never runs as a formula (a leading quote)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


MARGIN_COLUMNS = ("combined_cost", "margin", "margin_pct", "expected_margin")


def to_csv(bundles: list[dict[str, Any]]) -> str:
    """Render bundles as CSV, one row per bundle; names and ids never start a formula."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["item_ids", "item_names", "prices", "orders_with_bundle", "support", "confidence", "lift",
         "combined_price", "suggested_discount_pct", "expected_revenue", *MARGIN_COLUMNS, "discount_note"]
    )  # fmt: skip
    for b in bundles:
        items = b["items"]
        writer.writerow(
            [
                cell(" + ".join(i["item_id"] for i in items)),
                cell(" + ".join(i["name"] for i in items)),
                " + ".join("" if i["price"] is None else f"{i['price']:.2f}" for i in items),
                b["orders_with_bundle"],
                b["support"],
                b["confidence"],
                b["lift"],
                b["combined_price"],
                b["suggested_discount_pct"],
                b["expected_revenue"],
                *("" if b.get(c) is None else b[c] for c in MARGIN_COLUMNS),
                cell(b.get("discount_note") or ""),
            ]
        )
    return out.getvalue()


@router.get("/bundles", response_model=BundlesResponse, responses=CSV_RESPONSE)
async def bundles(
    state: State,
    n: NQuery = 20,
    size: Annotated[int, Query(ge=2, le=3, description="Items per bundle: 2 or 3.")] = 2,
    min_lift: Annotated[float, Query(ge=0, le=1e6)] = 1.5,
    category: Annotated[
        str | None, Query(max_length=ID_MAX, description="Bundles with an item in it.")
    ] = None,
    min_orders: Annotated[int, Query(ge=2, le=1_000_000, description="Orders a bundle must be seen in.")] = 3,
    mixed_categories: Annotated[
        bool, Query(description="Leave out bundles whose items all share one category (alternatives).")
    ] = True,
    format: Annotated[Literal["json", "csv"], Query(description="csv: a file download.")] = "json",
    placement: PlacementQuery = None,
    max_per_category: MaxPerCategory = None,
    channel: ChannelQuery = None,
) -> Response:
    """Return bundles bought together, sorted by expected revenue, with the numbers behind each."""
    engine = state.require()
    query = BundleQuery(n, size, min_lift, category, min_orders, mixed_categories, max_per_category)
    rules, shown = View(placement, max_per_category).shape(state.rules.book, engine.scorer, "bundles")
    found, applied = await engine.bundler.answer(query, rules, shown)
    if format == "csv":
        headers = {"Content-Disposition": f'attachment; filename="bundles-size{size}.csv"'}
        return Response(to_csv(found), media_type="text/csv", headers=headers)
    body = {
        "bundles": found,
        "size": size,
        "model_version": engine.version,
        "rules_applied": applied,
        "recommendation_id": engine.scorer.new_recommendation_id(placement, channel),
        "placement": placement,
        "channel": channel,
    }
    return json_response(body, version=engine.version)
