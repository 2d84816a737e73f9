"""Buy-again answers: a customer's own past items, ranked by when each falls due (``features.reorder``).

"Today" is the newest day known (the artifact's or a live event's, as for trending items), so a
demo on past data still has items due. Items the customer bought live since training count as
bought today (not due again yet), items in their cart or dismissed are left out, and the rules in
force for the placement apply after scoring, as on every list.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from features.reorder import ReorderHistory
from service.live import LiveHistory
from service.rules import ListRules
from service.scorer import Scorer, day_text

__all__ = ["REORDER", "buy_again", "due_matrix", "today_of"]

REORDER = "reorder"  # the placement whose lists are buy-again lists (the endpoint, and campaign exports)


def today_of(scorer: Scorer) -> int:
    """Return the day due dates count from: the newest day known (the artifact's, or a live event's)."""
    found = scorer.loaded.artifact.reorder
    return max(scorer.trend.end_day, found.newest_day if found is not None else -1)


def due_matrix(
    found: ReorderHistory, user_rows: np.ndarray, today: float, horizon: float, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return users x items scores (-inf: never bought) and intervals for a batch of customers."""
    position, items, scores, interval = found.due(user_rows, today, horizon)
    dense = np.full((len(user_rows), n_items), -np.inf, dtype=np.float64)
    every = np.full((len(user_rows), n_items), np.nan, dtype=np.float64)
    dense[position, items] = scores
    every[position, items] = interval
    return dense, every


def buy_again(
    scorer: Scorer, user_id: str, n: int, live: LiveHistory, shape: ListRules, horizon: int
) -> dict[str, Any]:
    """Return a customer's past items, the most due first, as an answer body."""
    found = scorer.loaded.artifact.reorder
    row = scorer.users.get(user_id)
    today = today_of(scorer)
    extra = {"as_of": day_text(today), "horizon_days": horizon}
    if found is None or row is None or found.orders.indptr[row] == found.orders.indptr[row + 1]:
        return scorer.envelope([], "no_history", None, **extra)
    dense, every = due_matrix(found, np.array([row]), today, horizon, len(scorer.catalog))
    scores, every = dense[0], every[0]
    purchased = set(live.counts.get("purchase", {}))
    bought_now, _ = scorer.catalog.index(sorted(purchased))
    scores[bought_now] = np.minimum(scores[bought_now], 0.0)  # bought again since training: not due yet
    left_out, _ = scorer.catalog.index(sorted((live.owned - purchased) | scorer.dismissed_of(user_id, live)))
    scores[left_out] = -np.inf  # in the cart, or dismissed
    rows, values, applied = shape.top(scores, n, scorer.catalog.cap_codes)
    start, end = found.orders.indptr[row], found.orders.indptr[row + 1]
    bought = dict(zip(found.orders.indices[start:end].tolist(), range(start, end), strict=True))
    items = []
    for item, value in zip(rows.tolist(), values.tolist(), strict=True):
        at = bought[item]
        last = int(found.last_day[at])
        items.append(
            {
                **scorer.catalog.facts[item],
                "score": round(float(value), 6),
                "times_bought": int(found.orders.data[at]),
                "last_bought": day_text(last),
                "every_days": round(float(every[item]), 1),
                "due_on": day_text(round(last + float(every[item]))),
            }
        )
    return scorer.envelope(items, "reorder", applied, **extra)
