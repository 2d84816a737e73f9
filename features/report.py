"""The data report: what was read, what was kept and why, and the shape of what remains."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.baskets import order_baskets
from features.matrix import Interactions
from features.validate import ValidationReport

__all__ = ["BASKET_SIZE_BINS", "data_report"]

#: Basket size buckets (inclusive lower bounds) for the distribution in the report.
BASKET_SIZE_BINS: tuple[tuple[str, int, int], ...] = (
    ("1", 1, 1),
    ("2", 2, 2),
    ("3-5", 3, 5),
    ("6-10", 6, 10),
    ("11-20", 11, 20),
    ("21-50", 21, 50),
    ("51+", 51, 1 << 62),
)


def data_report(
    validation: ValidationReport,
    events: pd.DataFrame,
    interactions: Interactions,
    top: int = 10,
    anonymous: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Return the report as a JSON-ready dict; anonymous orders are counted apart, for cart models."""
    baskets = order_baskets(events, interactions.users, interactions.items, anonymous)
    identified = baskets.user_idx >= 0
    sizes = baskets.sizes[identified]
    values = baskets.value[identified]
    ts = events["timestamp"]
    purchases = events[events["event_type"] == "purchase"]
    return {
        **validation.to_dict(),
        "users": len(interactions.users),
        "items": len(interactions.items),
        "interactions": int(interactions.matrix.nnz),
        "density": interactions.density,
        "orders": len(sizes),
        "anonymous_rows": 0 if anonymous is None else len(anonymous),
        "anonymous_orders": len(baskets) - len(sizes),
        "orders_with_anonymous": len(baskets),
        "date_min": ts.min().isoformat() if len(ts) else None,
        "date_max": ts.max().isoformat() if len(ts) else None,
        "event_types": {str(k): int(v) for k, v in events["event_type"].value_counts().items() if v},
        "basket_sizes": {
            "mean": float(sizes.mean()) if len(sizes) else 0.0,
            "median": float(np.median(sizes)) if len(sizes) else 0.0,
            "distribution": {
                label: int(((sizes >= lo) & (sizes <= hi)).sum()) for label, lo, hi in BASKET_SIZE_BINS
            },
        },
        "order_value": {
            "mean": float(values.mean()) if len(values) else 0.0,
            "median": float(np.median(values)) if len(values) else 0.0,
        },
        "top_items": _top_items(purchases if len(purchases) else events, interactions, top),
    }


def _top_items(events: pd.DataFrame, interactions: Interactions, top: int) -> list[dict[str, Any]]:
    """Return the most frequent items with their name, category, price and event count."""
    counts = events["item_id"].value_counts()
    counts = counts[counts > 0].head(top)
    rows = interactions.items.to_index(counts.index.to_numpy())
    meta = interactions.item_meta
    prices = meta["price"].to_numpy(dtype=np.float64)
    return [
        {
            "item_id": str(item_id),
            "name": str(meta.at[row, "name"]),
            "category": str(meta.at[row, "category"]),
            "price": None if np.isnan(prices[row]) else float(prices[row]),
            "events": int(n),
        }
        for (item_id, n), row in zip(counts.items(), rows, strict=True)
        if row >= 0
    ]
