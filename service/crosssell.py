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

Only items bought with a cart item have ``P`` above their base rate, so an anonymous cart is ranked
sparsely: the cart rows' stored pairs give those candidates exactly, and every other item ranks by
its base rate, in an order sorted once per price exponent at load. The answer equals a dense
ranking over the whole catalog (ties go to the lower item row) at a cost that grows with the cart's
pairs, not with the catalog. A known user's blend touches every item and is ranked densely.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from service.recommender import Scorer
from training.models import best_of

__all__ = ["CrossSeller", "RankBy"]

logger = logging.getLogger(__name__)

RankBy = Literal["model", "expected_value", "probability"]


def stored_cells(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for every stored cell of ``rows``, its position in ``rows`` and its index into ``data``."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    which = np.repeat(np.arange(len(rows)), lengths)
    first = np.cumsum(lengths) - lengths
    return which, np.arange(int(lengths.sum())) + (starts - first)[which]


class CrossSeller:
    """Cross-sell for one loaded model; precomputes the cart model's weights, substitutes and orders."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.catalog = scorer.catalog
        self.assoc = assoc = scorer.copurchase
        self.counts = assoc.pair_counts.tocsr()
        miss_log = assoc.miss_log(scorer.settings.crosssell_shrinkage)
        if not (np.array_equal(miss_log.indptr, self.counts.indptr) and miss_log.nnz == self.counts.nnz):
            raise ValueError("the cart model's weights must share the pair counts' sparsity")
        self.miss = np.asarray(miss_log.data, dtype=np.float64)
        self.base = assoc.base_rate()
        self.keep_base = 1.0 - self.base
        self.price = np.nan_to_num(self.catalog.prices, nan=0.0)
        manifest = scorer.loaded.bundle.manifest.get("crosssell", {})
        self.price_exponent = float(manifest.get("price_exponent", 1.0))
        self.substitute_of = self._substitute_matrix()
        in_stock = np.flatnonzero(self.catalog.in_stock)
        self.orders = {  # in-stock items by base rank, per exponent a request can ask for
            g: in_stock[np.lexsort((in_stock, -self._weigh(self.base[in_stock], in_stock, g)))]
            for g in {self.price_exponent, 1.0, 0.0}
        }

    def _weigh(self, prob: np.ndarray, rows: np.ndarray, exponent: float) -> np.ndarray:
        """Return ``prob x price ** exponent`` for ``rows``."""
        return prob * np.power(self.price[rows], exponent) if exponent else prob.astype(np.float64)

    def _substitute_matrix(self) -> sp.csr_matrix:
        """Return item x item cells marking what replaces an item rather than joins it."""
        n = len(self.catalog)
        coview = self.scorer.coview
        if coview is None:
            return sp.csr_matrix((n, n), dtype=bool)
        viewed = coview.pair_counts.tocoo()
        bought = np.asarray(self.counts[viewed.row, viewed.col]).ravel()
        cats = self.catalog.category_codes
        same = cats[viewed.col] == cats[viewed.row]
        rare = (viewed.data >= 2) & (bought <= 0.1 * viewed.data)
        keep = same & rare
        cells = (np.ones(int(keep.sum()), dtype=bool), (viewed.row[keep], viewed.col[keep]))
        return sp.csr_matrix(cells, shape=(n, n))

    def cells(self, cart: list[tuple[str, int]]) -> int:
        """Return how many stored pairs a cart's ranking reads: its cost, known before computing it."""
        rows, _ = self.catalog.index([item for item, _ in cart])
        return int((self.counts.indptr[rows + 1] - self.counts.indptr[rows]).sum())

    def substitutes(self, cart_rows: np.ndarray) -> np.ndarray:
        """Return items that replace a cart item rather than join it."""
        _, cells = stored_cells(self.substitute_of, cart_rows)
        found = np.sort(self.substitute_of.indices[cells])
        first = np.ones(
            len(found), dtype=bool
        )  # sorted, the first of each run: np.unique at a fifth of the cost
        first[1:] = found[1:] != found[:-1]
        return found[first]

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
        exponent = {"model": self.price_exponent, "expected_value": 1.0, "probability": 0.0}[rank_by]
        which, cells = stored_cells(self.counts, rows)
        cols = self.counts.indices[cells]
        candidates, slot = np.unique(cols, return_inverse=True)
        log_miss = np.bincount(slot, weights=self.miss[cells], minlength=len(candidates))
        prob = 1.0 - self.keep_base[candidates] * np.exp(log_miss)
        left_out = rows[:0] if include_substitutes else self.substitutes(rows)
        blocked = np.concatenate([rows, left_out])
        user_row = None if user_id is None else self.scorer.users.get(user_id)
        if user_row is not None and self.scorer.settings.personal_weight > 0:
            chosen, ranks, chosen_prob = self._rank_blended(user_row, candidates, prob, blocked, exponent, n)
        else:
            chosen, ranks, chosen_prob = self._rank_sparse(candidates, prob, blocked, exponent, n)
        return {
            "items": self._describe(rows, chosen, chosen_prob, ranks, which, cells),
            "cart_items": self.catalog.ids[rows].tolist(),
            "unknown_items": unknown,
            "substitutes_left_out": len(left_out),
            "ranked_by": f"P x price^{exponent:g}" if exponent else "P",
            "personalized": user_row is not None,
            "model_version": self.scorer.version,
            "variant": self.scorer.variant,
            "recommendation_id": self.scorer.new_recommendation_id(),
        }

    def _rank_sparse(
        self, candidates: np.ndarray, prob: np.ndarray, blocked: np.ndarray, exponent: float, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the best ``n`` rows, ranks and P: the cart's candidates, then items at their base rate."""
        mark = np.zeros(len(self.base), dtype=np.int8)  # 1: a candidate, 2: blocked
        mark[candidates] = 1
        mark[blocked] = 2
        ok = (mark[candidates] == 1) & self.catalog.in_stock[candidates]
        order = self.orders[exponent]
        prefix = order[: n + len(candidates) + len(blocked)]  # enough to leave n after the skips
        rest = prefix[mark[prefix] == 0][:n]
        pool = np.concatenate([candidates[ok], rest])
        pool_prob = np.concatenate([prob[ok], self.base[rest]])
        ranks = self._weigh(pool_prob, pool, exponent)
        best = np.lexsort((pool, -ranks))[:n]
        return pool[best], ranks[best], pool_prob[best]

    def _rank_blended(
        self,
        user_row: int,
        candidates: np.ndarray,
        prob: np.ndarray,
        blocked: np.ndarray,
        exponent: float,
        n: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the best ``n`` rows, ranks and P over the whole catalog, blended with the user's scores."""
        scorer, everything = self.scorer, np.arange(len(self.base))
        dense = self.base.copy()
        dense[candidates] = prob
        rank = self._weigh(dense, everything, exponent)
        personal = scorer.model.score(scorer.history_row(user_row), np.array([user_row]))[0]
        spread = float(personal.max() - personal.min()) or 1.0
        rank = rank * (1.0 + scorer.settings.personal_weight * (personal - personal.min()) / spread)
        rank[blocked] = -np.inf
        rank[~self.catalog.in_stock] = -np.inf
        top = best_of(rank, n)
        top = top[np.isfinite(rank[top])]
        return top, rank[top], dense[top]

    def _describe(
        self,
        cart_rows: np.ndarray,
        chosen: np.ndarray,
        prob: np.ndarray,
        ranks: np.ndarray,
        which: np.ndarray,
        cells: np.ndarray,
    ) -> list[dict[str, Any]]:
        """Attach support, confidence, lift and the reason (the cart item that pulls hardest)."""
        assoc, n_baskets = self.assoc, max(self.assoc.n_baskets, 1)
        cols = self.counts.indices[cells]
        wanted = np.zeros(len(self.base), dtype=bool)
        wanted[chosen] = True
        mine = wanted[cols]
        cols, which, cells = cols[mine], which[mine], cells[mine]
        strongest = np.lexsort((which, self.miss[cells], cols))  # per item, the most negative log-miss
        ordered = cols[strongest]
        starts = (
            np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]])) if len(ordered) else ordered
        )
        first_cols = ordered[starts]
        if len(first_cols):
            at = np.minimum(np.searchsorted(first_cols, chosen), len(first_cols) - 1)
            found = first_cols[at] == chosen
            strongest_cell = strongest[starts[at]]
            anchors = np.where(found, cart_rows[which[strongest_cell]], -1)
            counts = np.where(found, self.counts.data[cells[strongest_cell]], 0).astype(np.float64)
        else:
            anchors, counts = np.full(len(chosen), -1), np.zeros(len(chosen))
        columns = zip(
            chosen.tolist(),
            anchors.tolist(),
            counts.tolist(),
            assoc.item_counts[np.maximum(anchors, 0)].tolist(),
            assoc.item_counts[chosen].tolist(),
            prob.tolist(),
            self.price[chosen].tolist(),
            ranks.tolist(),
            strict=True,
        )
        facts, names, ids = self.catalog.facts, self.catalog.names, self.catalog.ids
        out = []
        for row, anchor, count, anchor_count, item_count, p, price, rank in columns:
            bought = count > 0
            confidence = count / max(anchor_count, 1) if bought else 0.0
            base = item_count / n_baskets
            out.append(
                {
                    **facts[row],
                    "probability": round(p, 6),
                    "expected_value": round(p * price, 4),
                    "support": round(count / n_baskets, 6),
                    "confidence": round(confidence, 6),
                    "lift": round(confidence / base, 4) if base > 0 and bought else 0.0,
                    "rank_score": round(rank, 6),
                    "reason": f"often bought with {names[anchor]}" if bought else "popular with shoppers",
                    "because_of": str(ids[anchor]) if bought else None,
                }
            )
        return out
