"""Cart cross-sell: complements ranked by what they add to the order, with the trained cart model.

The ranking is ``training.models.cart_ranking.CartRanker``, the same object offline evaluation
scores: the cart model training chose on validation (the manifest's ``crosssell``), calibrated ``P``,
``P x price ** g`` with the validated ``g`` (a request may ask for ``expected_value``, g = 1, or
``probability``, g = 0), substitutes left out unless asked for, items out of stock never.
Anonymous carts are ranked sparsely (a cost that grows with the cart's stored cells, not the
catalog); a known customer's blend (what they buy again, and the per-user model, weights from
validation) ranks the whole catalog. Every suggestion carries ``expected_value = P x price``, the
co-purchase statistics with the cart item that pulls hardest on it, and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from features.association import Associations
from service.errors import InvalidRequest
from service.rules import PLAIN, ListRules
from service.scorer import Scorer
from training.models.cart_kernels import anchors, explain, scratch
from training.models.cart_ranking import Blend, CartRanker, Ranked, substitute_matrix

__all__ = ["CartLines", "CrossSeller", "RankBy"]


RankBy = Literal["model", "expected_value", "probability", "margin"]


@dataclass(frozen=True)
class CartLines:
    """A cart read against the catalog: known rows, their ids and quantities, unknown ids, cost."""

    rows: np.ndarray
    ids: list[str]
    unknown: list[str]
    quantities: np.ndarray
    cost: int


class CrossSeller:
    """Cross-sell for one loaded model: the trained cart model behind the shared ranker."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.catalog = catalog = scorer.catalog
        spec = scorer.loaded.artifact.manifest.crosssell
        self.assoc: Associations = scorer.copurchase
        substitutes = substitute_matrix(
            None if scorer.coview is None else scorer.coview.pair_counts,
            self.assoc.pair_counts,
            catalog.categories,
        )
        self.blend = Blend(**spec.blend)
        self.ranker = CartRanker(
            scorer.loaded.cart,
            catalog.prices,
            catalog.in_stock,
            substitutes,
            spec.price_exponent,
            catalog.costs,
        )
        self.price = self.ranker.price
        self.kind = scorer.loaded.cart.kind
        self.pairs = sp.csr_matrix(self.assoc.pair_counts)
        self.pairs.sort_indices()

    def prepare(self, cart: list[tuple[str, int]]) -> CartLines:
        """Return a cart's known rows, its unknown ids, quantities and cost (stored cells to read)."""
        rows, unknown = self.catalog.index([item for item, _ in cart])
        quantity = dict(cart)
        ids = self.catalog.ids[rows].tolist()
        lines = np.array([quantity.get(item, 1) for item in ids], dtype=np.float64)
        return CartLines(rows, ids, unknown, lines, self.ranker.cost(rows))

    def cells(self, cart: list[tuple[str, int]]) -> int:
        """Return how many stored cells a cart's ranking reads: its cost, known before computing it."""
        return self.prepare(cart).cost

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
        cart: list[tuple[str, int]] | CartLines,
        n: int,
        user_id: str | None = None,
        include_substitutes: bool = False,
        rank_by: RankBy = "model",
        shape: ListRules = PLAIN,
        dismissed: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Return complements not in the cart (lines or prepared), best first, with their statistics.

        Items the shopper dismissed (``dismissed``) never come back.
        """
        prepared = cart if isinstance(cart, CartLines) else self.prepare(cart)
        rows = prepared.rows
        by_margin = rank_by == "margin"
        if by_margin and self.ranker.margin is None:
            raise InvalidRequest("rank_by=margin needs item costs, and this model's catalog has none "
                                 "(train with an items file that has a cost column)", field="rank_by",
                                 value=rank_by)  # fmt: skip
        exponent = {"model": self.ranker.price_exponent, "expected_value": 1.0, "probability": 0.0}.get(
            rank_by, 1.0
        )
        user_row = None if user_id is None else self.scorer.users.get(user_id)
        boost = None if user_row is None else self.boost(user_row)
        options = (include_substitutes, boost)
        codes = self.catalog.cap_codes
        left_out, _ = self.catalog.index(sorted(dismissed))
        ranked = self.ranker.rank(
            rows, n, exponent, *options, shape.adjustment, codes, shape.cap, by_margin, left_out
        )
        applied = [] if ranked.plain is None else shape.applied(ranked.rows, ranked.plain)
        return {
            "items": self._describe(rows, ranked, user_row),
            "cart_items": prepared.ids,
            "unknown_items": prepared.unknown,
            "cart_value": round(float(self.price[rows] @ prepared.quantities), 2),
            "substitutes_left_out": ranked.left_out,
            "ranked_by": "P x margin" if by_margin else f"P x price^{exponent:g}" if exponent else "P",
            "cart_model": self.kind,
            "personalized": boost is not None,
            "model_version": self.scorer.version,
            "variant": self.scorer.variant,
            "recommendation_id": self.scorer.new_recommendation_id(),
            "rules_applied": applied,
        }

    def _anchors(self, cart_rows: np.ndarray, ranked: Ranked) -> np.ndarray:
        """Return, per chosen item, the cart row whose cell adds most to it (-1: none)."""
        w = self.ranker.model.weights
        slots = scratch(len(self.catalog)).slots
        return anchors(ranked.rows, cart_rows, ranked.which, ranked.cells, w.indices, w.data, slots)

    def _describe(self, cart_rows: np.ndarray, ranked: Ranked, user_row: int | None) -> list[dict[str, Any]]:
        """Attach support, confidence, lift and the reason (the cart item that pulls hardest)."""
        chosen = ranked.rows
        anchors = self._anchors(cart_rows, ranked)
        owned = np.zeros(len(chosen), dtype=bool)
        if user_row is not None:
            history = self.scorer.history_row(user_row)
            owned = np.isin(chosen, history.indices)
        pairs, assoc = self.pairs, self.assoc
        stats, counts = explain(
            chosen, anchors, ranked.prob, ranked.rank, self.price,
            pairs.indptr, pairs.indices, pairs.data, assoc.item_counts, assoc.n_baskets,
        )  # fmt: skip
        columns = stats.tolist()
        names, ids = self.catalog.names, self.catalog.ids
        reasons = [
            (f"often bought with {names[a]}" if c > 0 else f"goes with {names[a]}")
            if a >= 0
            else ("you bought it before" if again else "popular with shoppers")
            for a, c, again in zip(anchors.tolist(), counts.tolist(), owned.tolist(), strict=True)
        ]
        facts = self.catalog.facts
        unit = self.price[chosen] - self.catalog.costs[chosen]
        margins = [None if m != m else round(m, 2) for m in unit.tolist()]
        expected = [
            None if m != m else round(p * m, 4)
            for p, m in zip(ranked.prob.tolist(), unit.tolist(), strict=True)
        ]
        return [
            {
                **facts[row],
                "probability": p,
                "expected_value": value,
                "margin": margin,
                "expected_margin": gain,
                "support": support,
                "confidence": conf,
                "lift": lifted,
                "rank_score": rank,
                "reason": reason,
                "because_of": str(ids[anchor]) if anchor >= 0 else None,
            }
            for row, anchor, p, value, support, conf, lifted, rank, reason, margin, gain in zip(
                chosen.tolist(), anchors.tolist(), *columns, reasons, margins, expected, strict=True
            )
        ]
