"""Bundles for marketers: item sets bought together, with the numbers behind each and a discount.

For a bundle ``B`` of ``k`` items with order counts ``c(x)`` and joint count ``c(B)`` over ``N``
orders: ``support = c(B) / N``; ``confidence = c(B) / max c(x)``, the share of the orders of its
best-selling item that hold the whole bundle (the conservative direction);
``lift = c(B) N^(k-1) / prod c(x)``. Only bundles seen in at least ``min_orders`` orders count.
The suggested discount is ``5% + 15% x (1 - confidence)``, rounded to 0.5 and kept within 5-20%:
items that already sell together need only a nudge; weaker bundles get more, never above 20%.
``expected_revenue = c(B) x combined_price x (1 - discount)``: what the bundle would have earned
over the data's period at the discounted price, so bundles that move the most money come first.

Every candidate (pairs seen in 2+ orders; triples grown from the ``MAX_SEED_PAIRS`` strongest
pairs) is mined once when a model loads, as arrays sorted by expected revenue. A request only
masks those arrays and describes its top ``n``, on the bundles' own single thread
(``BUNDLE_EXECUTOR``), so no choice of parameters makes a request recompute anything or take a
slot of the pool that storefront misses use.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from cachetools import LRUCache

from features.association import set_confidence, set_lift
from service.scorer import Scorer

__all__ = ["BUNDLE_EXECUTOR", "BundleQuery", "Bundler", "Candidates"]


MAX_SEED_PAIRS = 2000
MIN_ORDERS = 2  # the smallest min_orders a request may ask for
MEMO_ENTRIES = 256
BUNDLE_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orderlift-bundles")


@dataclass(frozen=True)
class BundleQuery:
    """What a marketer asks for.

    ``mixed_categories`` leaves out bundles whose items all share one known category (two laptops
    are alternatives, not a bundle); ``category`` keeps bundles with an item in it.
    """

    n: int
    size: int
    min_lift: float
    category: str | None = None
    min_orders: int = 3
    mixed_categories: bool = True


@dataclass(frozen=True)
class Candidates:
    """Every bundle of one size, sorted by expected revenue (highest first), as parallel arrays."""

    members: np.ndarray  # bundles x size item rows
    joint: np.ndarray
    confidence: np.ndarray
    lift: np.ndarray
    combined: np.ndarray
    discount: np.ndarray
    revenue: np.ndarray
    one_category: np.ndarray
    codes: np.ndarray  # bundles x size category codes


class Bundler:
    """Bundle mining over one loaded model's co-purchase statistics and order baskets."""

    def __init__(self, scorer: Scorer) -> None:
        self.catalog = scorer.catalog
        self.assoc = scorer.copurchase
        self.n_orders = float(max(self.assoc.n_baskets, 1))
        self.price = np.nan_to_num(self.catalog.prices, nan=0.0)
        orders = sp.csc_matrix(scorer.loaded.artifact.orders, dtype=np.float32)
        a, b, c = self._pair_table()
        self.candidates = {2: self._pairs(a, b, c), 3: self._triples(a, b, c, orders)}
        self._memo: LRUCache[BundleQuery, list[dict[str, Any]]] = LRUCache(MEMO_ENTRIES)
        self._lock = threading.Lock()

    async def answer(self, query: BundleQuery) -> list[dict[str, Any]]:
        """Return ``top(query)`` computed on the bundles' own thread."""
        return await asyncio.get_running_loop().run_in_executor(BUNDLE_EXECUTOR, self.top, query)

    def top(self, query: BundleQuery) -> list[dict[str, Any]]:
        """Return the best ``query.n`` bundles of ``query.size`` items by expected revenue."""
        with self._lock:
            found = self._memo.get(query)
        if found is None:
            found = self._select(query)
            with self._lock:
                self._memo[query] = found
        return [dict(b) for b in found]

    def _select(self, query: BundleQuery) -> list[dict[str, Any]]:
        table = self.candidates[query.size]
        keep = (table.lift >= query.min_lift) & (table.joint >= query.min_orders)
        if query.mixed_categories:
            keep &= ~table.one_category
        if query.category is not None:
            code = self.catalog.category_lookup.get(query.category, -2)
            keep &= (table.codes == code).any(axis=1)
        rows = np.flatnonzero(keep)[: query.n]
        return [self._describe(table, int(i)) for i in rows]

    def _describe(self, table: Candidates, i: int) -> dict[str, Any]:
        return {
            "items": [self.catalog.describe(int(x)) for x in table.members[i]],
            "orders_with_bundle": int(table.joint[i]),
            "support": round(float(table.joint[i] / self.n_orders), 6),
            "confidence": round(float(table.confidence[i]), 6),
            "lift": round(float(table.lift[i]), 4),
            "combined_price": round(float(table.combined[i]), 2),
            "suggested_discount_pct": float(table.discount[i]),
            "expected_revenue": round(float(table.revenue[i]), 2),
        }

    def _pair_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        upper = sp.triu(self.assoc.pair_counts, k=1).tocoo()
        keep = upper.data >= MIN_ORDERS
        return (
            upper.row[keep].astype(np.int64),
            upper.col[keep].astype(np.int64),
            upper.data[keep].astype(np.float64),
        )

    def _pairs(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> Candidates:
        members = np.stack([a, b], axis=1)
        counts = self.assoc.item_counts[members]
        return self._table(members, c, set_confidence(c, counts), set_lift(c, counts, self.assoc.n_baskets))

    def _triples(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, orders: sp.csc_matrix) -> Candidates:
        pair_lift = set_lift(c, self.assoc.item_counts[np.stack([a, b], axis=1)], self.assoc.n_baskets)
        strongest = np.argsort(-(c * pair_lift), kind="stable")[:MAX_SEED_PAIRS]
        a, b = a[strongest], b[strongest]
        both = orders[:, a].multiply(orders[:, b])  # orders x seed pairs
        third = sp.csr_matrix(both.T @ orders).tocoo()  # seed pairs x items
        p, k, joint = third.row, third.col.astype(np.int64), third.data.astype(np.float64)
        keep = (k > b[p]) & (joint >= MIN_ORDERS)
        p, k, joint = p[keep], k[keep], joint[keep]
        members = np.stack([a[p], b[p], k], axis=1)
        found = self.assoc.item_counts[members]
        lift = set_lift(joint, found, self.assoc.n_baskets)
        return self._table(members, joint, set_confidence(joint, found), lift)

    def _table(
        self, members: np.ndarray, joint: np.ndarray, confidence: np.ndarray, lift: np.ndarray
    ) -> Candidates:
        combined = self.price[members].sum(axis=1)
        codes = self.catalog.category_codes[members]
        named = np.array([bool(c) for c in self.catalog.category_names], dtype=bool)
        one_category = (codes == codes[:, :1]).all(axis=1) & named[codes[:, 0]]
        discount = np.clip(np.round((5.0 + 15.0 * (1.0 - confidence)) * 2) / 2, 5.0, 20.0)
        revenue = joint * combined * (1.0 - discount / 100.0)
        order = np.argsort(-revenue, kind="stable")
        return Candidates(
            members[order], joint[order], confidence[order], lift[order], combined[order],
            discount[order], revenue[order], one_category[order], codes[order],
        )  # fmt: skip
