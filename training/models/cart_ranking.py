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

With item costs known, ``by_margin`` ranks by expected margin ``P x (price - cost)`` instead (an
item without a cost ranks last). An ``Adjustment`` (merchandising rules) hides, scales and pins
items after scoring and before the top-k, and ``cap`` limits items per category, as everywhere
(``training.models.adjustment``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.models.adjustment import (
    NO_ADJUSTMENT,
    Adjustment,
    applicable,
    ranked,
    under_cap,
    with_pins,
)
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
    plain: np.ndarray | None = None  # with an adjustment: the rows the model alone would rank first


def substitute_matrix(
    coview: sp.csr_matrix | None, copurchase: sp.csr_matrix, categories: np.ndarray
) -> sp.csr_matrix:
    """Return item x item cells marking what replaces an item rather than joins it.

    A substitute shares the item's category (a known one: items without a category share none),
    was viewed with it at least twice, and was bought with it at most a tenth as often as viewed
    with it.
    """
    names = np.asarray(categories, dtype=object)
    n = len(names)
    if coview is None:
        return sp.csr_matrix((n, n), dtype=bool)
    known = pd.notna(names) & (names != "")
    codes = np.where(known, pd.factorize(np.where(known, names, ""))[0], -1)
    viewed = sp.coo_matrix(coview)
    bought = np.asarray(sp.csr_matrix(copurchase)[viewed.row, viewed.col]).ravel()
    same = (codes[viewed.col] == codes[viewed.row]) & (codes[viewed.row] >= 0)
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
        cost: np.ndarray | None = None,
    ) -> None:
        self.model = model
        self.price = np.nan_to_num(np.asarray(price, dtype=np.float64), nan=0.0)
        known = None if cost is None else np.asarray(cost, dtype=np.float64)
        #: price - cost per item (NaN where the cost is unknown), or None when no cost is known at all.
        self.margin = None if known is None or not np.isfinite(known).any() else self.price - known
        self.in_stock = np.asarray(in_stock, dtype=bool)
        self.substitute_of = sp.csr_matrix(substitutes, dtype=bool)
        self.price_exponent = float(price_exponent)
        self.idle_logit = model.logit(model.idle)
        self.idle_prob = sigmoid(self.idle_logit)
        self._orders: dict[tuple[float, bool], np.ndarray] = {}
        self._powered: dict[tuple[float, bool], np.ndarray] = {}  # values ** g, per ranking
        self.ones = np.ones(len(self.price))  # every item's factor without rules
        for g in {self.price_exponent, 1.0, 0.0}:
            self.order(g)
        if self.margin is not None:
            self.order(1.0, by_margin=True)

    def values(self, by_margin: bool = False) -> np.ndarray:
        """Return what ``P`` is multiplied by: prices, or margins (unknown ones NaN: they rank last)."""
        if by_margin and self.margin is None:
            raise ValueError("ranking by margin needs item costs")
        return self.margin if by_margin and self.margin is not None else self.price

    def weigh(
        self, prob: np.ndarray, rows: np.ndarray | None, exponent: float, by_margin: bool = False
    ) -> np.ndarray:
        """Return ``prob x price ** exponent`` (or ``prob x margin``) for ``rows`` (None: every item)."""
        if not exponent:
            return prob.astype(np.float64)
        powered = self._powered.get((exponent, by_margin))
        if powered is None:
            powered = self._powered[(exponent, by_margin)] = np.power(self.values(by_margin), exponent)
        return prob * (powered if rows is None else powered[rows])

    def order(self, exponent: float, by_margin: bool = False) -> np.ndarray:
        """Return in-stock items by their idle rank, best first (ties: lower row); cached per ranking."""
        found = self._orders.get((exponent, by_margin))
        if found is None:
            in_stock = np.flatnonzero(self.in_stock)
            rank = np.nan_to_num(
                self.weigh(self.idle_prob[in_stock], in_stock, exponent, by_margin), nan=-np.inf
            )
            found = self._orders[(exponent, by_margin)] = in_stock[np.lexsort((in_stock, -rank))]
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
        adjustment: Adjustment = NO_ADJUSTMENT,
        categories: np.ndarray | None = None,
        cap: int | None = None,
        by_margin: bool = False,
        exclude: np.ndarray | None = None,
    ) -> Ranked:
        """Return the best ``n`` complements of a cart; ``boost`` (a known customer's) ranks densely.

        ``exclude`` rows never rank (the items a shopper dismissed), pinned or not.
        """
        exclude = np.zeros(0, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
        g = 1.0 if by_margin else self.price_exponent if exponent is None else float(exponent)
        cart_rows = np.asarray(cart_rows, dtype=np.int64)
        candidates, scores, which, cells = self.model.score_cart(cart_rows)
        if boost is None:
            sparse = _Sparse(
                self, cart_rows, not include_substitutes and self.substitute_of.nnz > 0, g, by_margin, exclude
            )
            prob = self.model.probability(scores)
            rows, rank, chosen, left_out = sparse.top(candidates, prob, n, adjustment, categories, cap)
            plain = (
                sparse.top(candidates, prob, n, NO_ADJUSTMENT, categories, cap)[0]
                if adjustment.active
                else None
            )
            return Ranked(rows, rank, chosen, which, cells, left_out, plain)
        left = np.zeros(0, dtype=np.int64) if include_substitutes else self.substitutes(cart_rows)
        logit = self.idle_logit.copy()
        logit[candidates] = self.model.logit(scores)
        every = sigmoid(logit if boost is None else logit + boost)
        rank = self.weigh(every, None, g, by_margin)
        rank[np.isnan(rank)] = -np.inf
        rank[np.concatenate([cart_rows, left, exclude])] = -np.inf
        rank[~self.in_stock] = -np.inf
        rows, values, plain = ranked(rank, n, adjustment, categories, cap)
        return Ranked(
            rows, values, every[rows], which, cells, len(left), plain if adjustment.active else None
        )


class _Sparse:
    """One cart's sparse selection (the compiled ``select``), with rules, the cap and pins around it.

    Rules scale items through ``factor`` in the kernel; the idle items' order (by idle rank times
    factor) is sorted once per rule set and ranking, so no scaled item needs to be a candidate.
    """

    def __init__(
        self,
        ranker: CartRanker,
        cart_rows: np.ndarray,
        leave_out: bool,
        g: float,
        by_margin: bool,
        exclude: np.ndarray,
    ) -> None:
        self.ranker, self.cart_rows, self.leave_out = ranker, cart_rows, leave_out
        self.g, self.by_margin, self.exclude = g, by_margin, exclude

    def _order(self, adjustment: Adjustment) -> tuple[np.ndarray, np.ndarray]:
        """Return every item's factor and the in-stock items by idle rank x factor, best first."""
        r = self.ranker
        if not len(adjustment.scaled):
            return r.ones, r.order(self.g, self.by_margin)

        def make() -> np.ndarray:
            stocked = np.flatnonzero(r.in_stock)
            idle = r.weigh(r.idle_prob[stocked], stocked, self.g, self.by_margin) * factor[stocked]
            return stocked[np.lexsort((stocked, -np.nan_to_num(idle, nan=-np.inf)))]

        factor = adjustment.dense(len(r.price), np.dtype(np.float64))[0]
        return factor, adjustment.memo(("idle order", id(r), self.g, self.by_margin), make)

    def _select(
        self, candidates: np.ndarray, prob: np.ndarray, k: int, hidden: np.ndarray, adjustment: Adjustment
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        r, subs = self.ranker, self.ranker.substitute_of
        factor, order = self._order(adjustment)
        rows, rank, p, left_out = select(
            candidates, prob, self.cart_rows, subs.indptr, subs.indices, self.leave_out, r.in_stock,
            r.values(self.by_margin), self.g, order, r.idle_prob, int(k), scratch(len(r.price)).marks,
            factor, hidden,
        )  # fmt: skip
        return rows, rank, p, int(left_out)

    def top(
        self,
        candidates: np.ndarray,
        prob: np.ndarray,
        n: int,
        adjustment: Adjustment,
        categories: np.ndarray | None,
        cap: int | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Return the best ``n`` rows, their rank and P, and how many substitutes were left out."""
        if not adjustment.active and cap is None:
            return self._select(candidates, prob, n, self.exclude, adjustment)
        pins = applicable(adjustment, self._usable(adjustment.pinned))
        hidden = np.concatenate([adjustment.hidden, adjustment.pinned, self.exclude])
        want = max(n - len(pins), 0)
        k = max(want, 1)  # the kernel needs room for one
        while True:
            rows, rank, p, left_out = self._select(candidates, prob, k, hidden, adjustment)
            keep = np.ones(len(rows), dtype=bool) if cap is None or categories is None else under_cap(
                categories[rows], cap)  # fmt: skip
            at = np.flatnonzero(keep)[:want]
            if len(at) >= want or len(rows) < k:
                break
            k = 2 * k + 8
        rows, rank, p = rows[at], rank[at], p[at]
        if pins:
            rows, rank, p = self._pinned(rows, rank, p, pins, candidates, prob, adjustment)
        return rows[:n], rank[:n], p[:n], left_out

    def _pinned(
        self,
        rows: np.ndarray,
        rank: np.ndarray,
        p: np.ndarray,
        pins: list[tuple[int, int]],
        candidates: np.ndarray,
        prob: np.ndarray,
        adjustment: Adjustment,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the ranked rows with the pinned ones put at their positions, with their rank and P."""
        r = self.ranker
        pinned = np.array([row for _, row in pins], dtype=np.int64)
        pin_prob = r.idle_prob[pinned].astype(np.float64)
        for i, row in enumerate(pinned.tolist()):  # a few pins, each found among the candidates
            found = np.flatnonzero(candidates == row)
            if len(found):
                pin_prob[i] = prob[found[0]]
        factor = self._order(adjustment)[0]
        pin_rank = r.weigh(pin_prob, pinned, self.g, self.by_margin) * factor[pinned]
        order = with_pins(np.arange(len(rows)), [(pos, len(rows) + i) for i, (pos, _) in enumerate(pins)])
        return (
            np.concatenate([rows, pinned])[order],
            np.concatenate([rank, pin_rank])[order],
            np.concatenate([p, pin_prob])[order],
        )

    def _usable(self, rows: np.ndarray) -> np.ndarray:
        """Return which (a few pinned) rows the cart allows: in stock, not in it, no substitute left out."""
        usable = self.ranker.in_stock[rows] & ~(rows[:, None] == self.cart_rows[None, :]).any(axis=1)
        usable &= ~(rows[:, None] == self.exclude[None, :]).any(axis=1)
        if self.leave_out and len(rows):
            left = self.ranker.substitutes(self.cart_rows)
            usable &= ~(rows[:, None] == left[None, :]).any(axis=1)
        return usable
