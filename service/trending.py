"""Trending items in the service: the artifact's daily counts, plus the days after them from live events.

Live cart and purchase events add to per-day counts (``features.trending``: a purchase counts 1, a
cart ``CART_WEIGHT``), in Redis hashes ``orderlift:trend:{day}`` (shared by workers, kept
``DAYS`` days) or in this process without Redis. Each engine's ``TrendFeed`` puts them beside the
artifact's counts (live counts only for the days after the artifact's last one, which the
training data already holds) over the ``DAYS`` days ending on the newest day known, and scores
its catalog. ``ServiceState.refresh_trends`` rebuilds every feed at most every
``ORDERLIFT_TRENDING_REFRESH_S`` seconds; each rebuild gets a new ``stamp``, part of the cache keys
of answers that read it.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

import numpy as np
import redis.asyncio as aioredis
import scipy.sparse as sp

from features.trending import CART_WEIGHT, DAY_NS, DAYS, TrendCounts, trend_scores

__all__ = ["TrendCounter", "TrendFeed", "day_of"]

logger = logging.getLogger(__name__)

WEIGHTS = {"purchase": 1.0, "cart": CART_WEIGHT}
KEY = "orderlift:trend:{day}"
TTL_S = DAYS * 86_400
_stamps = itertools.count(1)


def day_of(timestamp: str) -> int:
    """Return the UTC day (since 1970-01-01) of an ISO 8601 timestamp with an offset."""
    return int(datetime.fromisoformat(timestamp).timestamp() * 10**9) // DAY_NS


class TrendCounter:
    """Live cart and purchase counts per item and day: Redis when configured, else this process."""

    def __init__(self, client: aioredis.Redis | None = None) -> None:
        self.client = client
        self.local: dict[int, dict[str, float]] = defaultdict(dict)

    async def record(self, records: list[dict[str, Any]]) -> None:
        """Count the carts and purchases among logged events."""
        counted = [
            (day_of(r["timestamp"]), r["item_id"], WEIGHTS[r["type"]])
            for r in records
            if r["type"] in WEIGHTS
        ]
        if not counted:
            return
        if self.client is None:
            for day, item, weight in counted:
                self.local[day][item] = self.local[day].get(item, 0.0) + weight
            for day in sorted(self.local)[:-DAYS]:  # bounded: only the days a feed reads
                del self.local[day]
            return
        pipe = self.client.pipeline(transaction=False)
        for day, item, weight in counted:
            pipe.hincrbyfloat(KEY.format(day=day), item, weight)
        for day in {day for day, _, _ in counted}:
            pipe.expire(KEY.format(day=day), TTL_S)
        await pipe.execute()

    async def days(self, first: int, last: int) -> dict[int, dict[str, float]]:
        """Return the counts of days ``first`` to ``last`` (inclusive) that have any."""
        if self.client is None:
            return {day: dict(found) for day, found in self.local.items() if first <= day <= last}
        wanted = list(range(first, last + 1))
        pipe = self.client.pipeline(transaction=False)
        for day in wanted:
            pipe.hgetall(KEY.format(day=day))
        found = await pipe.execute()
        return {
            day: {k.decode(): float(v) for k, v in counts.items()}
            for day, counts in zip(wanted, found, strict=True)
            if counts
        }


class TrendFeed:
    """One catalog's trending items: artifact and live counts over ``DAYS`` days, scored per window."""

    def __init__(self, lookup: dict[str, int], n_items: int, trend: TrendCounts | None) -> None:
        self.lookup, self.n_items, self.trend = lookup, n_items, trend
        self.last_artifact_day = -1 if trend is None else trend.last_day
        self.stamp = 0
        self.end_day = self.last_artifact_day
        self.counts = np.zeros((n_items, DAYS), dtype=np.float32)
        self._scores: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.update({})

    def update(self, live: dict[int, dict[str, float]]) -> None:
        """Rebuild the counts from the artifact's days and the live days after them."""
        fresh = [day for day in live if day > self.last_artifact_day]
        end = max([self.last_artifact_day, *fresh])
        counts = np.zeros((self.n_items, DAYS), dtype=np.float32)
        first = end - DAYS + 1
        if self.trend is not None:
            artifact = sp.csr_matrix(self.trend.counts).tocoo()
            column = artifact.col + self.trend.first_day - first
            keep = column >= 0
            np.add.at(counts, (artifact.row[keep], column[keep]), artifact.data[keep])
        for day in fresh:
            if day >= first:
                found = [(self.lookup[item], n) for item, n in live[day].items() if item in self.lookup]
                if found:
                    rows, values = zip(*found, strict=True)
                    np.add.at(counts[:, day - first], np.array(rows), np.array(values, dtype=np.float32))
        self.counts, self.end_day, self._scores = counts, end, {}
        self.stamp = next(_stamps)

    def scores(self, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return each item's trend score (``-inf``: not trending), recent and baseline counts."""
        found = self._scores.get(window)
        if found is None:
            found = self._scores[window] = trend_scores(self.counts, DAYS - 1, window)
        return found
