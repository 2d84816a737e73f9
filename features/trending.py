"""Trending items: what sells increasingly, each item against its own recent past.

Counts are per item and UTC day: purchase lines count 1, cart lines ``CART_WEIGHT``. Over a
window of the last ``window`` days ending on ``end_day``, an item's recent count ``r`` is set
against its baseline ``b``, the mean count per ``window`` days over the ``baseline`` days before
the window. Its trend score is ``log((r + s) / (b + s))`` with ``s = SMOOTHING``, so a first sale
of a never-sold item is not yet a trend; an item with fewer than ``MIN_RECENT`` recent counts, or
a score of 0 or less (not growing), does not trend at all (``-inf``). Ties go to the lower item
row. Training keeps the last ``DAYS`` days of counts in the artifact
(``trend.npz``), and the service adds the days after them from live events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import timestamp_ns
from features.ids import IdIndex
from features.matrix import rows_of

__all__ = [
    "BASELINE_DAYS",
    "CART_WEIGHT",
    "DAYS",
    "DAY_NS",
    "MIN_RECENT",
    "SMOOTHING",
    "WINDOW_DAYS",
    "TrendCounts",
    "daily_counts",
    "trend_scores",
]

DAYS = 56  # days of counts kept: the longest window (28) and its baseline (28)
WINDOW_DAYS, BASELINE_DAYS = 7, 28
CART_WEIGHT = 0.5
SMOOTHING = 2.0
MIN_RECENT = 2.0
DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class TrendCounts:
    """Items x days counts; column ``d`` is day ``first_day + d`` (days since 1970-01-01, UTC)."""

    counts: sp.csr_matrix
    first_day: int

    @property
    def last_day(self) -> int:
        """Return the newest day counted."""
        return self.first_day + self.counts.shape[1] - 1


def daily_counts(events: pd.DataFrame, items: IdIndex, days: int = DAYS) -> TrendCounts:
    """Return the last ``days`` days of purchase and cart counts per item (ending on the newest event)."""
    types = events["event_type"]  # categorical, as validated
    by_type = {"purchase": 1.0, "cart": CART_WEIGHT}
    lookup = np.array([by_type.get(str(c), 0.0) for c in types.cat.categories] + [0.0])
    weight = lookup[types.cat.codes.to_numpy()]  # code -1 (missing) reads the trailing 0
    day = timestamp_ns(events["timestamp"]) // DAY_NS
    cols = rows_of(events["item_id"], items)
    last = int(day.max()) if len(day) else 0
    first = last - days + 1
    keep = (weight > 0) & (cols >= 0) & (day >= first)
    matrix = sp.csr_matrix(
        (weight[keep].astype(np.float32), (cols[keep], (day[keep] - first).astype(np.int64))),
        shape=(len(items), days),
    )
    matrix.sum_duplicates()
    return TrendCounts(matrix, first)


def trend_scores(
    counts: np.ndarray | sp.spmatrix,
    end_column: int,
    window: int = WINDOW_DAYS,
    baseline: int = BASELINE_DAYS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each item's trend score (``-inf``: not trending), recent count and baseline count.

    ``counts`` is items x days; the window ends on column ``end_column`` (inclusive).
    """
    dense = np.asarray(sp.csr_matrix(counts).toarray() if sp.issparse(counts) else counts, dtype=np.float64)
    start = max(end_column - window + 1, 0)
    recent = dense[:, start : end_column + 1].sum(axis=1)
    before = dense[:, max(start - baseline, 0) : start]
    base = before.sum(axis=1) * window / max(before.shape[1], 1)
    score = np.log((recent + SMOOTHING) / (base + SMOOTHING))
    score[(recent < MIN_RECENT) | (score <= 0)] = -np.inf
    return score, recent, base
