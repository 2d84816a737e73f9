"""Cart cross-sell: complements ranked by what they add to the order, with the trained cart model.

The ranking is ``training.models.cart_ranking.CartRanker``, the same object offline evaluation
scores: the cart model training chose on validation (``manifest["crosssell"]``), calibrated ``P``,
``P x price ** g`` with the validated ``g`` (a request may ask for ``expected_value``, g = 1, or
``probability``, g = 0), substitutes left out unless asked for, items out of stock never.
Anonymous carts are ranked sparsely (a cost that grows with the cart's stored cells, not the
catalog); a known customer's blend (what they buy again, and the per-user model, weights from
validation) ranks the whole catalog. Every suggestion carries ``expected_value = P x price``, the
co-purchase statistics with the cart item that pulls hardest on it, and the reason.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from features.association import Associations
from service.recommender import Scorer
from training.models.cart_ranking import Blend, CartRanker, Ranked, substitute_matrix

__all__ = ["CrossSeller", "RankBy"]

logger = logging.getLogger(__name__)

RankBy = Literal["model", "expected_value", "probability"]


class CrossSeller:
    """Cross-sell for one loaded model: the trained cart model behind the shared ranker."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.catalog = catalog = scorer.catalog
        bundle = scorer.loaded.bundle
        spec = bundle.manifest.get("crosssell", {})
        self.assoc: Associations = scorer.copurchase
        substitutes = substitute_matrix(
            None if scorer.coview is None else scorer.coview.pair_counts,
            self.assoc.pair_counts,
            catalog.category_codes,
        )
        self.blend = Blend(**spec.get("blend", {}))
        self.ranker = CartRanker(
            scorer.loaded.cart,
            catalog.prices,
            catalog.in_stock,
            substitutes,
            float(spec.get("price_exponent", 0.0)),
        )
        self.price = self.ranker.price
        self.kind = scorer.loaded.cart.kind
        counts = self.assoc.pair_counts.tocsr()
        counts.sort_indices()
        n = len(catalog)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(counts.indptr))
        self.count_keys = rows * n + counts.indices  # sorted: a pair's count by one search
        self.count_values = np.asarray(counts.data, dtype=np.float64)

    def cells(self, cart: list[tuple[str, int]]) -> int:
        """Return how many stored cells a cart's ranking reads: its cost, known before computing it."""
        rows, _ = self.catalog.index([item for item, _ in cart])
        return self.ranker.cost(rows)

    def substitutes(self, cart_rows: np.ndarray) -> np.ndarray:
        """Return items that replace a cart item rather than join it."""
        return self.ranker.substitutes(cart_rows)

    def boost(self, user_row: int) -> np.ndarray | None:
        """Return a known customer's log-odds boost, or None when the blend is off."""
        if not self.blend.active:
            return None
        scorer = self.scorer
        history = scorer.history_row(user_row)
        dense = np.zeros(len(self.catalog))
        dense[history.indices] = history.data
        personal = None
        if self.blend.personal > 0:
            personal = scorer.model.score(history, np.array([user_row]))[0]
        return self.blend.boost(dense, personal)

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
        exponent = {"model": self.ranker.price_exponent, "expected_value": 1.0, "probability": 0.0}[rank_by]
        user_row = None if user_id is None else self.scorer.users.get(user_id)
        boost = None if user_row is None else self.boost(user_row)
        ranked = self.ranker.rank(rows, n, exponent, include_substitutes, boost)
        quantity = dict(cart)
        lines = np.array([quantity.get(str(self.catalog.ids[r]), 1) for r in rows], dtype=np.float64)
        return {
            "items": self._describe(rows, ranked, user_row),
            "cart_items": self.catalog.ids[rows].tolist(),
            "unknown_items": unknown,
            "cart_value": round(float((self.price[rows] * lines).sum()), 2),
            "substitutes_left_out": ranked.left_out,
            "ranked_by": f"P x price^{exponent:g}" if exponent else "P",
            "cart_model": self.kind,
            "personalized": boost is not None,
            "model_version": self.scorer.version,
            "variant": self.scorer.variant,
            "recommendation_id": self.scorer.new_recommendation_id(),
        }

    def _anchors(self, cart_rows: np.ndarray, ranked: Ranked) -> np.ndarray:
        """Return, per chosen item, the cart row whose cell adds most to it (-1: none)."""
        weights = self.ranker.model.weights
        cols = weights.indices[ranked.cells]
        wanted = np.zeros(len(self.catalog), dtype=bool)
        wanted[ranked.rows] = True
        mine = wanted[cols]
        cols, which, values = cols[mine], ranked.which[mine], weights.data[ranked.cells[mine]]
        if not len(cols):
            return np.full(len(ranked.rows), -1, dtype=np.int64)
        strongest = np.lexsort((which, -values, cols))  # per item, the largest cell first
        ordered = cols[strongest]
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        first_cols = ordered[starts]
        at = np.minimum(np.searchsorted(first_cols, ranked.rows), len(first_cols) - 1)
        found = first_cols[at] == ranked.rows
        return np.where(found, cart_rows[which[strongest[starts[at]]]], -1)

    def _describe(self, cart_rows: np.ndarray, ranked: Ranked, user_row: int | None) -> list[dict[str, Any]]:
        """Attach support, confidence, lift and the reason (the cart item that pulls hardest)."""
        chosen, n_items = ranked.rows, len(self.catalog)
        anchors = self._anchors(cart_rows, ranked)
        keys = np.maximum(anchors, 0) * n_items + chosen
        at = np.minimum(np.searchsorted(self.count_keys, keys), max(len(self.count_keys) - 1, 0))
        hit = (anchors >= 0) & (self.count_keys[at] == keys) if len(self.count_keys) else anchors < -1
        counts = np.where(hit, self.count_values[at] if len(self.count_values) else 0.0, 0.0)
        owned = np.zeros(len(chosen), dtype=bool)
        if user_row is not None:
            history = self.scorer.history_row(user_row)
            owned = np.isin(chosen, history.indices)
        assoc, n_baskets = self.assoc, max(self.assoc.n_baskets, 1)
        columns = zip(
            chosen.tolist(),
            anchors.tolist(),
            counts.tolist(),
            assoc.item_counts[np.maximum(anchors, 0)].tolist(),
            assoc.item_counts[chosen].tolist(),
            ranked.prob.tolist(),
            self.price[chosen].tolist(),
            ranked.rank.tolist(),
            owned.tolist(),
            strict=True,
        )
        facts, names, ids = self.catalog.facts, self.catalog.names, self.catalog.ids
        out = []
        for row, anchor, count, anchor_count, item_count, p, price, rank, again in columns:
            confidence = count / max(anchor_count, 1) if count > 0 else 0.0
            base = item_count / n_baskets
            if anchor >= 0:
                reason = f"often bought with {names[anchor]}" if count > 0 else f"goes with {names[anchor]}"
            else:
                reason = "you bought it before" if again else "popular with shoppers"
            out.append(
                {
                    **facts[row],
                    "probability": round(p, 6),
                    "expected_value": round(p * price, 4),
                    "support": round(count / n_baskets, 6),
                    "confidence": round(confidence, 6),
                    "lift": round(confidence / base, 4) if base > 0 and count > 0 else 0.0,
                    "rank_score": round(rank, 6),
                    "reason": reason,
                    "because_of": str(ids[anchor]) if anchor >= 0 else None,
                }
            )
        return out
