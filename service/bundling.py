"""Bundles for marketers: item sets bought together, with the numbers behind each and a discount.

For a bundle ``B`` of ``k`` items with order counts ``c(x)`` and joint count ``c(B)`` over ``N``
orders: ``support = c(B) / N``; ``confidence = c(B) / max c(x)``, the share of the orders of its
best-selling item that hold the whole bundle (the conservative direction);
``lift = c(B) N^(k-1) / prod c(x)``. Only bundles seen in at least ``min_orders`` orders count.
The suggested discount is ``5% + 15% x (1 - confidence)``, rounded to 0.5 and kept within 5-20%:
items that already sell together need only a nudge; weaker bundles get more, never above 20%.
``expected_revenue = c(B) x combined_price x (1 - discount)``: what the bundle would have earned
over the data's period at the discounted price, so bundles that move the most money come first.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from service.recommender import Scorer

__all__ = ["Bundler"]

logger = logging.getLogger(__name__)

MAX_SEED_PAIRS = 2000


class Bundler:
    """Bundle mining over one loaded model's co-purchase statistics and order baskets."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.catalog = scorer.catalog
        self.assoc = scorer.copurchase
        self.orders = sp.csc_matrix(scorer.loaded.bundle.orders, dtype=np.float32)
        self.price = np.nan_to_num(self.catalog.prices, nan=0.0)
        self._memo: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def top(
        self,
        n: int,
        size: int,
        min_lift: float,
        category: str | None,
        min_orders: int = 3,
        mixed_categories: bool = True,
    ) -> list[dict[str, Any]]:
        """Return the best ``n`` bundles of ``size`` items by expected revenue.

        ``mixed_categories`` leaves out bundles whose items all share one known category (two
        laptops are alternatives, not a bundle).
        """
        key = (n, size, min_lift, category, min_orders, mixed_categories)
        if key not in self._memo:
            found = self._pairs(min_lift, min_orders) if size == 2 else self._triples(min_lift, min_orders)
            if mixed_categories:
                found = [b for b in found if not b["_one_category"]]
            if category is not None:
                code = self.catalog.category_lookup.get(category, -2)
                found = [b for b in found if code in b.pop("_codes")]
            self._memo[key] = sorted(found, key=lambda b: -b["expected_revenue"])[:n]
            if len(self._memo) > 256:
                self._memo.pop(next(iter(self._memo)))
        return [{k: v for k, v in b.items() if not k.startswith("_")} for b in self._memo[key]]

    def _pair_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        upper = sp.triu(self.assoc.pair_counts, k=1).tocoo()
        return upper.row.astype(np.int64), upper.col.astype(np.int64), upper.data.astype(np.float64)

    def _pairs(self, min_lift: float, min_orders: int) -> list[dict[str, Any]]:
        a, b, c = self._pair_table()
        counts, n = self.assoc.item_counts.astype(np.float64), float(max(self.assoc.n_baskets, 1))
        lift = c * n / (counts[a] * counts[b])
        keep = (lift >= min_lift) & (c >= min_orders)
        a, b, c, lift = a[keep], b[keep], c[keep], lift[keep]
        confidence = c / np.maximum(counts[a], counts[b])
        return self._rows(np.stack([a, b], axis=1), c, confidence, lift)

    def _triples(self, min_lift: float, min_orders: int) -> list[dict[str, Any]]:
        a, b, c = self._pair_table()
        counts, n = self.assoc.item_counts.astype(np.float64), float(max(self.assoc.n_baskets, 1))
        strongest = np.argsort(-(c * c * n / (counts[a] * counts[b])))[:MAX_SEED_PAIRS]
        strongest = strongest[c[strongest] >= min_orders]
        a, b = a[strongest], b[strongest]
        both = self.orders[:, a].multiply(self.orders[:, b])  # orders x seed pairs
        third = sp.csr_matrix(both.T @ self.orders).tocoo()  # seed pairs x items
        p, k, joint = third.row, third.col.astype(np.int64), third.data.astype(np.float64)
        keep = (k > b[p]) & (joint >= min_orders)
        p, k, joint = p[keep], k[keep], joint[keep]
        ia, ib = a[p], b[p]
        lift = joint * n * n / (counts[ia] * counts[ib] * counts[k])
        ok = lift >= min_lift
        p, k, joint, ia, ib, lift = p[ok], k[ok], joint[ok], ia[ok], ib[ok], lift[ok]
        confidence = joint / np.maximum(np.maximum(counts[ia], counts[ib]), counts[k])
        return self._rows(np.stack([ia, ib, k], axis=1), joint, confidence, lift)

    def _rows(
        self,
        members: np.ndarray,
        joint: np.ndarray,
        confidence: np.ndarray,
        lift: np.ndarray,
    ) -> list[dict[str, Any]]:
        n = float(max(self.assoc.n_baskets, 1))
        combined = self.price[members].sum(axis=1)
        codes = self.catalog.category_codes[members]
        named = np.array([bool(c) for c in self.catalog.category_names], dtype=bool)
        one_category = (codes == codes[:, :1]).all(axis=1) & named[codes[:, 0]]
        discount = np.clip(np.round((5.0 + 15.0 * (1.0 - confidence)) * 2) / 2, 5.0, 20.0)
        revenue = joint * combined * (1.0 - discount / 100.0)
        top = np.argsort(-revenue)[:5000]
        return [
            {
                "items": [self.catalog.describe(int(x)) for x in members[i]],
                "orders_with_bundle": int(joint[i]),
                "support": round(float(joint[i] / n), 6),
                "confidence": round(float(confidence[i]), 6),
                "lift": round(float(lift[i]), 4),
                "combined_price": round(float(combined[i]), 2),
                "suggested_discount_pct": float(discount[i]),
                "expected_revenue": round(float(revenue[i]), 2),
                "_codes": set(self.catalog.category_codes[members[i]].tolist()),
                "_one_category": bool(one_category[i]),
            }
            for i in top
        ]
