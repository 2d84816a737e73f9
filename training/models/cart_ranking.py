"""The cart ranker: the one cross-sell ranking, used by offline evaluation and by the service.

For a cart's rows, a fitted ``CartModel`` gives every item a score (sparse: the cart rows' cells,
every other item at its idle score). The ranker turns scores into calibrated ``P`` and ranks by
``P x price ** g`` (``g`` chosen on validation; 0 = P alone, 1 = expected value). It leaves out the
cart's items, substitutes of them (unless asked for) and items out of stock; ties go to the lower
item row.

A known customer adds a boost to the log-odds of every item (dense, so the whole catalog is
ranked)::

    logit P_j = logit P_cart(j) + buy_again x log1p(h_uj) + personal x (s_uj - min s_u) / (max s_u - min s_u)

with ``h_u`` the customer's own history (recency- and quantity-weighted purchases: what they buy
again) and ``s_u`` the per-user model's scores; the two weights are chosen on validation. Repeat
items are legitimate suggestions; items already in the cart never are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from training.models.base import best_of
from training.models.cart_base import CartModel, distinct, sigmoid, stored_cells
from training.models.cart_kernels import scratch, select

__all__ = ["Blend", "CartRanker", "Ranked", "substitute_matrix"]


@dataclass(frozen=True)
class Blend:
    """Weights of a known customer's own signals in the cart's log-odds."""

    buy_again: float = 0.0
    personal: float = 0.0

    @property
    def active(self) -> bool:
        """Return whether a known customer changes the answer at all."""
        return self.buy_again > 0 or self.personal > 0

    def boost(self, history: np.ndarray, personal: np.ndarray | None) -> np.ndarray:
        """Return the log-odds boost per item from the dense history row and the model's scores."""
        out = self.buy_again * np.log1p(np.maximum(np.asarray(history, dtype=np.float64), 0.0))
        if self.personal > 0 and personal is not None:
            s = np.asarray(personal, dtype=np.float64)
            spread = float(s.max() - s.min()) or 1.0
            out = out + self.personal * (s - s.min()) / spread
        return out


@dataclass(frozen=True)
class Ranked:
    """A cart's answer: chosen rows with their rank scores and P, and the cells that explain them."""

    rows: np.ndarray
    rank: np.ndarray
    prob: np.ndarray
    which: np.ndarray  # for each stored cell the cart read: its cart position
    cells: np.ndarray  # ...and its index into the model's W
    left_out: int  # substitutes left out


def substitute_matrix(
    coview: sp.csr_matrix | None, copurchase: sp.csr_matrix, category_codes: np.ndarray
) -> sp.csr_matrix:
    """Return item x item cells marking what replaces an item rather than joins it.

    A substitute shares the item's category, was viewed with it at least twice, and was bought
    with it at most a tenth as often as viewed with it.
    """
    n = len(category_codes)
    if coview is None:
        return sp.csr_matrix((n, n), dtype=bool)
    viewed = sp.coo_matrix(coview)
    bought = np.asarray(sp.csr_matrix(copurchase)[viewed.row, viewed.col]).ravel()
    same = category_codes[viewed.col] == category_codes[viewed.row]
    keep = same & (viewed.data >= 2) & (bought <= 0.1 * viewed.data)
    cells = (np.ones(int(keep.sum()), dtype=bool), (viewed.row[keep], viewed.col[keep]))
    return sp.csr_matrix(cells, shape=(n, n))


class CartRanker:
    """Rank a cart's complements with one cart model, prices, stock and the substitutes rule."""

    def __init__(
        self,
        model: CartModel,
        price: np.ndarray,
        in_stock: np.ndarray,
        substitutes: sp.csr_matrix,
        price_exponent: float,
    ) -> None:
        self.model = model
        self.price = np.nan_to_num(np.asarray(price, dtype=np.float64), nan=0.0)
        self.in_stock = np.asarray(in_stock, dtype=bool)
        self.substitute_of = sp.csr_matrix(substitutes, dtype=bool)
        self.price_exponent = float(price_exponent)
        self.idle_logit = model.logit(model.idle)
        self.idle_prob = sigmoid(self.idle_logit)
        self._orders: dict[float, np.ndarray] = {}
        for g in {self.price_exponent, 1.0, 0.0}:
            self.order(g)

    def weigh(self, prob: np.ndarray, rows: np.ndarray, exponent: float) -> np.ndarray:
        """Return ``prob x price ** exponent`` for ``rows``."""
        return prob * np.power(self.price[rows], exponent) if exponent else prob.astype(np.float64)

    def order(self, exponent: float) -> np.ndarray:
        """Return in-stock items by their idle rank, best first (ties: lower row); cached per exponent."""
        found = self._orders.get(exponent)
        if found is None:
            in_stock = np.flatnonzero(self.in_stock)
            rank = self.weigh(self.idle_prob[in_stock], in_stock, exponent)
            found = self._orders[exponent] = in_stock[np.lexsort((in_stock, -rank))]
        return found

    def substitutes(self, cart_rows: np.ndarray) -> np.ndarray:
        """Return the items that replace a cart item rather than join it (distinct, unordered)."""
        if not self.substitute_of.nnz:
            return np.zeros(0, dtype=np.int64)
        _, cells = stored_cells(self.substitute_of, cart_rows)
        return distinct(self.substitute_of.indices[cells], len(self.price))

    def cost(self, cart_rows: np.ndarray) -> int:
        """Return how many stored cells a cart's ranking reads: known before computing it."""
        w = self.model.weights
        return int((w.indptr[cart_rows + 1] - w.indptr[cart_rows]).sum())

    def rank(
        self,
        cart_rows: np.ndarray,
        n: int,
        exponent: float | None = None,
        include_substitutes: bool = False,
        boost: np.ndarray | None = None,
    ) -> Ranked:
        """Return the best ``n`` complements of a cart; ``boost`` (a known customer's) ranks densely."""
        g = self.price_exponent if exponent is None else float(exponent)
        cart_rows = np.asarray(cart_rows, dtype=np.int64)
        candidates, scores, which, cells = self.model.score_cart(cart_rows)
        if boost is None:
            subs = self.substitute_of
            rows, rank, prob, left_out = select(
                candidates,
                self.model.probability(scores),
                cart_rows,
                subs.indptr,
                subs.indices,
                not include_substitutes and subs.nnz > 0,
                self.in_stock,
                self.price,
                g,
                self.order(g),
                self.idle_prob,
                int(n),
                scratch(len(self.price)).marks,
            )
            return Ranked(rows, rank, prob, which, cells, int(left_out))
        left = np.zeros(0, dtype=np.int64) if include_substitutes else self.substitutes(cart_rows)
        blocked = np.concatenate([cart_rows, left])
        rows, rank, prob = self._dense(candidates, scores, blocked, g, n, boost)
        return Ranked(rows, rank, prob, which, cells, len(left))

    def _dense(
        self,
        candidates: np.ndarray,
        scores: np.ndarray,
        blocked: np.ndarray,
        g: float,
        n: int,
        boost: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rank the whole catalog with a known customer's boost in the log-odds."""
        logit = self.idle_logit.copy()
        logit[candidates] = self.model.logit(scores)
        prob = sigmoid(logit + boost)
        rank = self.weigh(prob, np.arange(len(prob)), g)
        rank[blocked] = -np.inf
        rank[~self.in_stock] = -np.inf
        top = best_of(rank, n)
        top = top[np.isfinite(rank[top])]
        return top, rank[top], prob[top]
