"""Bundles for marketers: item sets bought together, with the numbers behind each and a discount.

For a bundle ``B`` of ``k`` items with order counts ``c(x)`` and joint count ``c(B)`` over ``N``
orders: ``support = c(B) / N``; ``confidence = c(B) / max c(x)``, the share of the orders of its
best-selling item that hold the whole bundle (the conservative direction);
``lift = c(B) N^(k-1) / prod c(x)``. Only bundles seen in at least ``min_orders`` orders count.
The suggested discount is ``5% + 15% x (1 - confidence)``, rounded to 0.5 and kept within 5-20%:
items that already sell together need only a nudge; weaker bundles get more, never above 20%.
With item costs known, the discount also never takes the bundle's margin below
``ORDERLIFT_MIN_MARGIN`` of its discounted price: at most ``1 - cost / ((1 - m) x price)``, rounded
down to 0.5; when that is under 5%, the bundle is shown without a discount and says why
(``discount_note``). ``expected_revenue = c(B) x combined_price x (1 - discount)``: what the bundle
would have earned over the data's period at the discounted price, so bundles that move the most
money come first; ``expected_margin`` is the same for ``price x (1 - discount) - cost``.

Rules apply as they make sense for bundles: a bundle with a hidden item is left out, a boosted or
buried item scales its bundles' expected revenue for the ranking (pins do not apply), and
``max_per_category`` keeps at most that many bundles with an item of one category.

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
from service.rules import PLAIN, ListRules
from service.scorer import Scorer
from training.models.adjustment import NO_ADJUSTMENT, Adjustment, scale

__all__ = ["BUNDLE_EXECUTOR", "BundleQuery", "Bundler", "Candidates"]


MAX_SEED_PAIRS = 2000
MIN_ORDERS = 2  # the smallest min_orders a request may ask for
MEMO_ENTRIES = 256
SCAN_LIMIT = 20_000  # bundles a capped request looks through (a Python loop: bounded)
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
    cap: int | None = None  # max_per_category


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
    cost: np.ndarray  # combined cost (NaN when an item's cost is unknown)
    limited: np.ndarray  # the discount was lowered to keep the minimum margin (0: none fits)


class Bundler:
    """Bundle mining over one loaded model's co-purchase statistics and order baskets."""

    def __init__(self, scorer: Scorer, min_margin: float = 0.10) -> None:
        self.catalog = scorer.catalog
        self.min_margin = min_margin
        self.assoc = scorer.copurchase
        self.n_orders = float(max(self.assoc.n_baskets, 1))
        self.price = np.nan_to_num(self.catalog.prices, nan=0.0)
        orders = sp.csc_matrix(scorer.loaded.artifact.orders, dtype=np.float32)
        a, b, c = self._pair_table()
        self.candidates = {2: self._pairs(a, b, c), 3: self._triples(a, b, c, orders)}
        self._memo: LRUCache[tuple[BundleQuery, str], tuple[list[dict[str, Any]], list[str]]] = LRUCache(
            MEMO_ENTRIES
        )
        self._lock = threading.Lock()

    async def answer(
        self, query: BundleQuery, rules: ListRules = PLAIN, rules_key: str = "-"
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Return ``top(query, rules)`` computed on the bundles' own thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(BUNDLE_EXECUTOR, self.top, query, rules, rules_key)

    def top(
        self, query: BundleQuery, rules: ListRules = PLAIN, rules_key: str = "-"
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Return the best ``query.n`` bundles by expected revenue under the rules, and the rules applied."""
        memo = (query, rules_key)
        with self._lock:
            found = self._memo.get(memo)
        if found is None:
            table = self.candidates[query.size]
            rows = self._select(table, query, rules.adjustment)
            applied = []
            if rules.active:
                plain = self._select(table, query, NO_ADJUSTMENT)
                applied = rules.applied(table.members[rows].ravel(), table.members[plain].ravel())
            found = ([self._describe(table, int(i)) for i in rows], applied)
            with self._lock:
                self._memo[memo] = found
        return [dict(b) for b in found[0]], list(found[1])

    def _select(self, table: Candidates, query: BundleQuery, adjustment: Adjustment) -> np.ndarray:
        """Return the rows of the table a query shows, best first."""
        keep = (table.lift >= query.min_lift) & (table.joint >= query.min_orders)
        if query.mixed_categories:
            keep &= ~table.one_category
        if query.category is not None:
            code = self.catalog.category_lookup.get(query.category, -2)
            keep &= (table.codes == code).any(axis=1)
        if len(adjustment.hidden):
            keep &= ~np.isin(table.members, adjustment.hidden).any(axis=1)
        rows = np.flatnonzero(keep)
        if len(adjustment.scaled):
            factor = np.ones(len(self.price))
            factor[adjustment.scaled] = adjustment.factors
            ranked = scale(table.revenue[rows], factor[table.members[rows]].prod(axis=1))
            rows = rows[np.lexsort((rows, -ranked))]
        if query.cap is None:
            return rows[: query.n]
        return _capped(rows, self.catalog.cap_codes, table.members, query.n, query.cap)

    def _describe(self, table: Candidates, i: int) -> dict[str, Any]:
        combined, discount, cost = float(table.combined[i]), float(table.discount[i]), float(table.cost[i])
        paid = combined * (1.0 - discount / 100.0)
        margin = None if cost != cost else paid - cost
        return {
            "items": [self.catalog.describe(int(x)) for x in table.members[i]],
            "orders_with_bundle": int(table.joint[i]),
            "support": round(float(table.joint[i] / self.n_orders), 6),
            "confidence": round(float(table.confidence[i]), 6),
            "lift": round(float(table.lift[i]), 4),
            "combined_price": round(combined, 2),
            "suggested_discount_pct": discount,
            "expected_revenue": round(float(table.revenue[i]), 2),
            "combined_cost": None if margin is None else round(cost, 2),
            "margin": None if margin is None else round(margin, 2),
            "margin_pct": None if margin is None or paid <= 0 else round(100.0 * margin / paid, 2),
            "expected_margin": None if margin is None else round(float(table.joint[i]) * margin, 2),
            "discount_note": self._note(table, i, combined, cost),
        }

    def _note(self, table: Candidates, i: int, combined: float, cost: float) -> str | None:
        """Say why a bundle's discount is lower than the formula's, if it is."""
        if not table.limited[i]:
            return None
        floor = f"the {self.min_margin:.0%} minimum margin (ORDERLIFT_MIN_MARGIN)"
        if table.discount[i] == 0:
            at_list = 100.0 * (combined - cost) / combined if combined > 0 else 0.0
            return f"no discount: even 5% would leave less than {floor}; margin at full price {at_list:.1f}%"
        return f"discount lowered to keep {floor}"

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
        cost = self.catalog.costs[members].sum(axis=1)  # NaN when one is unknown
        codes = self.catalog.category_codes[members]
        named = np.array([bool(c) for c in self.catalog.category_names], dtype=bool)
        one_category = (codes == codes[:, :1]).all(axis=1) & named[codes[:, 0]]
        wanted = np.clip(np.round((5.0 + 15.0 * (1.0 - confidence)) * 2) / 2, 5.0, 20.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            most = np.floor(200.0 * (1.0 - cost / ((1.0 - self.min_margin) * combined))) / 2
        most = np.where(np.isfinite(cost) & (combined > 0), most, np.inf)
        discount = np.where(most >= 5.0, np.minimum(wanted, most), 0.0)
        limited = discount < wanted
        revenue = joint * combined * (1.0 - discount / 100.0)
        order = np.argsort(-revenue, kind="stable")
        return Candidates(
            members[order], joint[order], confidence[order], lift[order], combined[order],
            discount[order], revenue[order], one_category[order], codes[order], cost[order], limited[order],
        )  # fmt: skip


def _capped(rows: np.ndarray, cap_codes: np.ndarray, members: np.ndarray, n: int, cap: int) -> np.ndarray:
    """Return the first ``n`` ranked bundles keeping at most ``cap`` with an item of any one category."""
    taken: dict[int, int] = {}
    out = []
    for row in rows[:SCAN_LIMIT].tolist():
        found = {int(c) for c in cap_codes[members[row]].tolist() if c >= 0}
        if any(taken.get(c, 0) >= cap for c in found):
            continue
        for c in found:
            taken[c] = taken.get(c, 0) + 1
        out.append(row)
        if len(out) >= n:
            break
    return np.array(out, dtype=np.int64)
