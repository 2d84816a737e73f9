"""The shop's KPIs per week or month: from a history file's validated events, or from live events.

A period is the UTC calendar month (``2011-03``) or the week starting on Monday (``2011-03-07``);
each event counts in the period of its own timestamp, and ``all`` is every period together.
Per period (the experiment report's own sums, ``features.attribution.Tally``, keyed by period):

- ``users``: distinct user ids with any event; ``customers``: distinct user ids with a purchase;
- line value = ``price * quantity``; in a history file quantities are net of returns (a return is
  taken off the same customer's latest purchases of the item) and a line returned in full is left
  out; ``revenue`` = the sum of line values, orders without a customer id included;
- ``orders``: distinct order ids (a purchase without one is an order of its own);
- ``conversion_rate`` = customers / users;
- ``aov`` (average order value) = revenue / orders;
- ``purchase_frequency`` = orders with a customer id / customers;
- ``discount_rate`` = sum((price - cost) * quantity) / sum(price * quantity) over the lines of items
  whose cost is known (``basis`` ``cost``); when no cost is known, the share of revenue sold below
  the item's list price (the catalog's price, else the price the item sold at most often in the
  data, the higher one on a tie) over the lines with a list price (``basis`` ``list_price``).

A ratio with a zero denominator is None. ``all`` is computed over every event at once, not summed
from the periods (a customer of two months is one customer).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.attribution import Tally
from features.errors import InvalidParameter

__all__ = [
    "FORMULAS",
    "KPI_COLUMNS",
    "PERIODS",
    "ItemPrices",
    "KpiTally",
    "Period",
    "history_kpis",
    "period_labels",
    "series_csv",
]

Period = Literal["week", "month"]
PERIODS: tuple[Period, ...] = ("week", "month")
ALL = "all"
#: The columns of a KPI series, in the order a table or a CSV shows them.
KPI_COLUMNS = (
    "period", "users", "customers", "orders", "revenue", "conversion_rate", "aov", "purchase_frequency",
    "discount_rate",
)  # fmt: skip
#: Each KPI's formula in words, as the README and the page state them.
FORMULAS = {
    "conversion_rate": "customers (users with a purchase) / users (users with any event)",
    "aov": "revenue / orders",
    "purchase_frequency": "orders placed by customers / customers",
    "discount_rate": (
        "sum((price - cost) x quantity) / sum(price x quantity) over items with a known cost; without "
        "costs, the share of revenue sold below the item's list price"
    ),
    "revenue": "sum of price x quantity over purchases, net of returns",
    "orders": "distinct order ids (a purchase without one is an order of its own)",
}


@dataclass(frozen=True)
class ItemPrices:
    """Each item's list price and cost (NaN where unknown), to weigh discounts."""

    ids: pd.Index
    list_price: np.ndarray
    cost: np.ndarray

    @property
    def has_costs(self) -> bool:
        """Return whether any item's cost is known."""
        return bool(np.isfinite(self.cost).any())

    def attach(self, events: pd.DataFrame) -> pd.DataFrame:
        """Return the events with ``list_price`` and ``cost`` columns looked up by ``item_id``."""
        at = self.ids.get_indexer(pd.Index(events["item_id"].astype(str)))
        known = at >= 0
        list_price = np.where(known, self.list_price[np.maximum(at, 0)], np.nan)
        cost = np.where(known, self.cost[np.maximum(at, 0)], np.nan)
        return events.assign(list_price=list_price, cost=cost)


def period_labels(timestamps: pd.Series, by: Period) -> pd.Categorical[str]:
    """Return each UTC timestamp's period label: ``YYYY-MM``, or the Monday ``YYYY-MM-DD`` of its week."""
    if by not in PERIODS:
        raise InvalidParameter(f"by must be one of {list(PERIODS)}, got {by!r}")
    ts = utc_timestamps(timestamps)
    if ts.isna().any():
        raise InvalidParameter(f"{int(ts.isna().sum())} timestamps are missing or unreadable")
    if by == "month":
        keys = (ts.dt.year * 100 + ts.dt.month).to_numpy(dtype=np.int64)
        uniq, inverse = np.unique(keys, return_inverse=True)
        labels = [f"{k // 100:04d}-{k % 100:02d}" for k in uniq.tolist()]
        return pd.Categorical.from_codes(inverse.ravel(), categories=pd.Index(labels))
    days = ts.dt.floor("D").dt.tz_localize(None).to_numpy(dtype="datetime64[D]").astype(np.int64)
    monday = days - (days + 3) % 7  # 1970-01-01 was a Thursday
    uniq, inverse = np.unique(monday, return_inverse=True)
    labels = np.datetime_as_string(uniq.astype("datetime64[D]")).tolist()
    return pd.Categorical.from_codes(inverse.ravel(), categories=pd.Index(labels))


def utc_timestamps(values: pd.Series) -> pd.Series:
    """Return timestamps as UTC datetimes (ISO 8601 text is parsed; unreadable ones become NaT)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    return pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")


class KpiTally:
    """Running KPI sums per week, per month and over ``all``, folded from frames of events in any batches.

    Input columns: the experiment report's (``event_id``, ``user_id``, ``type``, ``order_id``,
    ``quantity``, ``price``) and ``timestamp`` and ``item_id``.
    """

    def __init__(self, prices: ItemPrices | None = None) -> None:
        self.prices = prices
        self.tally = Tally(by="period")  # arms: "week:2026-01-05", "month:2026-01" and "all"

    def add(self, events: pd.DataFrame) -> None:
        """Fold a frame of events into every week's, month's and ``all``'s sums."""
        if events.empty:
            return
        if self.prices is not None:
            events = self.prices.attach(events)
        self.tally.add(events.assign(period=ALL))
        dated = events.loc[utc_timestamps(events["timestamp"]).notna().to_numpy()]  # the rest count in all
        for by in PERIODS:
            labels = period_labels(dated["timestamp"], by)
            named = pd.Index([f"{by}:{c}" for c in labels.categories])
            self.tally.add(dated.assign(period=pd.Categorical.from_codes(labels.codes, categories=named)))

    def series(self, by: Period) -> dict[str, Any]:
        """Return the KPIs per period, oldest first and ``all`` last, as a JSON-ready dict."""
        if by not in PERIODS:
            raise InvalidParameter(f"by must be one of {list(PERIODS)}, got {by!r}")
        basis = "cost" if self.prices is not None and self.prices.has_costs else "list_price"
        prefix = f"{by}:"
        names = sorted(p for p in self.tally.arms if p.startswith(prefix))
        if ALL in self.tally.arms:
            names.append(ALL)
        rows = []
        for name in names:
            arm = self.tally.arms[name]
            totals = arm.totals()
            customers = int(totals["purchasers"])
            if basis == "cost":
                discount = _ratio(arm.margin, arm.costed_revenue)
            else:
                discount = _ratio(arm.below_list, arm.listed_revenue)
            rows.append(
                {
                    "period": name.removeprefix(prefix),
                    "users": int(totals["users"]),
                    "customers": customers,
                    "orders": int(totals["orders"]),
                    "revenue": round(float(totals["revenue"]), 2),
                    "conversion_rate": _ratio(customers, int(totals["users"])),
                    "aov": _ratio(float(totals["revenue"]), int(totals["orders"])),
                    "purchase_frequency": _ratio(len(arm.customer_orders), customers),
                    "discount_rate": discount,
                }
            )
        return {"by": by, "discount_basis": basis, "rows": rows, "formulas": FORMULAS}


def history_kpis(
    events: pd.DataFrame, anonymous: pd.DataFrame | None, catalog: pd.DataFrame | None
) -> KpiTally:
    """Return the KPI sums of a history file's validated events (and its orders without a customer)."""
    frames = [events] if anonymous is None or anonymous.empty else [events, anonymous]
    lines = pd.concat([_report_columns(f) for f in frames], ignore_index=True)
    lines = lines[~(lines["type"].eq("purchase") & ~(lines["quantity"] > 0))]  # returned in full
    lines = lines.assign(event_id=np.arange(len(lines)).astype(str))
    tally = KpiTally(_history_prices(lines, catalog))
    tally.add(lines)
    return tally


def series_csv(sources: Mapping[str, dict[str, Any] | None]) -> str:
    """Return KPI series as CSV text: a ``source`` column (the mapping's key), then ``KPI_COLUMNS``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["source", *KPI_COLUMNS], extrasaction="ignore")
    writer.writeheader()
    for source, series in sources.items():
        writer.writerows({"source": source, **row} for row in (series or {}).get("rows", []))
    return out.getvalue()


def _report_columns(events: pd.DataFrame) -> pd.DataFrame:
    """Return validated events in the report's input columns."""
    return pd.DataFrame(
        {
            "user_id": events["user_id"],
            "item_id": events["item_id"],
            "type": events["event_type"],
            "timestamp": events["timestamp"],
            "order_id": events["order_id"],
            "quantity": events["quantity"].astype(np.float64),
            "price": events["price"].astype(np.float64),
        }
    )


def _history_prices(lines: pd.DataFrame, catalog: pd.DataFrame | None) -> ItemPrices:
    """Return list prices (the catalog's, else the price sold at most often) and costs per item."""
    sold = lines.loc[lines["type"].eq("purchase") & lines["price"].notna(), ["item_id", "price"]]
    counts = sold.groupby(["item_id", "price"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["item_id", "n", "price"], ascending=[True, False, False])
    usual = counts.drop_duplicates("item_id").set_index("item_id")["price"]  # the most frequent price
    ids = pd.Index(usual.index.astype(str))
    list_price, cost = np.array(usual, dtype=np.float64), np.full(len(ids), np.nan)
    if catalog is not None and len(catalog):
        ids = ids.union(pd.Index(catalog["item_id"].astype(str)))
        list_price = np.array(usual.reindex(ids), dtype=np.float64)
        cost = np.full(len(ids), np.nan)
        at = ids.get_indexer(pd.Index(catalog["item_id"].astype(str)))
        if "price" in catalog:
            given = catalog["price"].to_numpy(dtype=np.float64)
            known = np.isfinite(given)
            list_price[at[known]] = given[known]
        if "cost" in catalog:
            cost[at] = catalog["cost"].to_numpy(dtype=np.float64)
    return ItemPrices(pd.Index(ids), list_price, cost)


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None
