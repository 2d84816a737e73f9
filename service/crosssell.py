"""Cart cross-sell: complements ranked by what they add to the order.

``P(j | cart) = 1 - (1 - P(j)) * prod_i (1 - c(i, j) / (c(i) + shrinkage))`` over the cart's items
(a noisy-or of shrunk co-purchase confidences over the base rate). Suggestions are ranked by
``P x price ** g``: training measures g on held-out orders (0 = P alone, 1 = expected value) and
keeps a price-weighted variant only if it beats P alone on both hit@10 and revenue@10; a request
may ask for ``expected_value`` or ``probability`` instead. Every suggestion carries its
``expected_value = P x price``. Known users blend in their personal scores:
``rank x (1 + personal_weight x s)`` with ``s`` their model score scaled to [0, 1].
Substitutes (same category as a cart item, co-viewed at least twice, and bought together at most a
tenth as often as viewed together) are left out unless asked for.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from service.recommender import Scorer
from training.models import top_n

__all__ = ["CrossSeller", "RankBy"]

logger = logging.getLogger(__name__)

RankBy = Literal["model", "expected_value", "probability"]


class CrossSeller:
    """Cross-sell for one loaded model; precomputes the cart model's sparse weights."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.catalog = scorer.catalog
        assoc = scorer.copurchase
        self.assoc = assoc
        self.miss_log = assoc.miss_log(scorer.settings.crosssell_shrinkage).tocsr()
        self.keep_base = 1.0 - assoc.base_rate()
        self.price = np.nan_to_num(self.catalog.prices, nan=0.0)
        manifest = scorer.loaded.bundle.manifest.get("crosssell", {})
        self.price_exponent = float(manifest.get("price_exponent", 1.0))

    def probability(self, cart_rows: np.ndarray) -> np.ndarray:
        """Return P(j | cart) for every item j (dense)."""
        log_miss = np.asarray(self.miss_log[cart_rows].sum(axis=0)).ravel()
        return 1.0 - self.keep_base * np.exp(log_miss)

    def substitutes(self, cart_rows: np.ndarray) -> np.ndarray:
        """Return items that replace a cart item rather than join it."""
        coview = self.scorer.coview
        if coview is None or not len(cart_rows):
            return np.zeros(0, dtype=np.int64)
        viewed = coview.pair_counts[cart_rows].tocoo()
        bought = np.asarray(self.assoc.pair_counts[cart_rows][viewed.row, viewed.col]).ravel()
        cats = self.catalog.category_codes
        same = cats[viewed.col] == cats[cart_rows[viewed.row]]
        rare = (viewed.data >= 2) & (bought <= 0.1 * viewed.data)
        return np.unique(viewed.col[same & rare])

    def suggest(
        self,
        cart: list[tuple[str, int]],
        n: int,
        user_id: str | None = None,
        include_substitutes: bool = False,
        rank_by: RankBy = "model",
    ) -> dict[str, Any]:
        """Return complements not in the cart, best first, with the statistics behind each."""
        rows, unknown = self.catalog.index([item for item, _ in cart])
        prob = self.probability(rows) if len(rows) else 1.0 - self.keep_base
        exponent = {"model": self.price_exponent, "expected_value": 1.0, "probability": 0.0}[rank_by]
        rank = prob * np.power(self.price, exponent) if exponent else prob.copy()
        user_row = None if user_id is None else self.scorer.users.get(user_id)
        if user_row is not None and self.scorer.settings.personal_weight > 0:
            personal = self.scorer.model.score(self.scorer.history[user_row], np.array([user_row]))[0]
            spread = float(personal.max() - personal.min()) or 1.0
            rank = rank * (1.0 + self.scorer.settings.personal_weight * (personal - personal.min()) / spread)
        blocked = np.zeros(len(self.catalog), dtype=bool)
        blocked[rows] = True
        left_out = np.zeros(0, dtype=np.int64) if include_substitutes else self.substitutes(rows)
        blocked[left_out] = True
        blocked |= ~self.catalog.in_stock
        idx, vals = top_n(rank[None, :], n, blocked[None, :])
        chosen = idx[0][np.isfinite(vals[0])]
        return {
            "items": self._describe(rows, chosen, prob, vals[0][np.isfinite(vals[0])]),
            "cart_items": [str(self.catalog.ids[r]) for r in rows],
            "unknown_items": unknown,
            "substitutes_left_out": len(left_out),
            "ranked_by": f"P x price^{exponent:g}" if exponent else "P",
            "personalized": user_row is not None,
            "model_version": self.scorer.version,
            "variant": self.scorer.variant,
            "recommendation_id": self.scorer.new_recommendation_id(),
        }

    def _describe(
        self, cart_rows: np.ndarray, chosen: np.ndarray, prob: np.ndarray, ranks: np.ndarray
    ) -> list[dict[str, Any]]:
        """Attach support, confidence, lift and the reason (the cart item that pulls hardest)."""
        assoc, n_baskets = self.assoc, max(self.assoc.n_baskets, 1)
        if len(cart_rows) and len(chosen):
            counts = self.assoc.pair_counts[cart_rows][:, chosen].toarray()
            strength = -np.asarray(self.miss_log[cart_rows][:, chosen].toarray())
            best = strength.argmax(axis=0)
        else:
            counts = np.zeros((1, len(chosen)))
            best = np.zeros(len(chosen), dtype=np.int64)
        out = []
        for k, (row, rank) in enumerate(zip(chosen.tolist(), ranks.tolist(), strict=True)):
            count = float(counts[best[k], k])
            anchor = int(cart_rows[best[k]]) if len(cart_rows) else -1
            confidence = count / max(int(assoc.item_counts[anchor]), 1) if anchor >= 0 else 0.0
            base = assoc.item_counts[row] / n_baskets
            reason = (
                f"often bought with {self.catalog.names[anchor]}" if count > 0 else "popular with shoppers"
            )
            out.append(
                {
                    **self.catalog.describe(row),
                    "probability": round(float(prob[row]), 6),
                    "expected_value": round(float(prob[row] * self.price[row]), 4),
                    "support": round(count / n_baskets, 6),
                    "confidence": round(confidence, 6),
                    "lift": round(float(confidence / base), 4) if base > 0 and count > 0 else 0.0,
                    "rank_score": round(float(rank), 6),
                    "reason": reason,
                    "because_of": str(self.catalog.ids[anchor]) if count > 0 else None,
                }
            )
        return out
