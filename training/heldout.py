"""Held-out carts: one item held out of each order, ranked through the serving ranker, and P calibrated.

From each order of >= 2 distinct items one item, drawn at random (seeded), is held out and the rest
is the cart; ``score_carts`` ranks each cart with ``CartRanker.rank``, exactly as the service does::

    crosssell_hit_at_k     = share of carts whose held-out item is in the top k
    crosssell_revenue_at_k = price of the held-out items found in the top k / price of all held out
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from features.baskets import Baskets
from training.models.cart import CartModel, sigmoid
from training.models.cart_ranking import CartRanker

__all__ = ["Boosts", "HeldOut", "fit_calibration", "hold_out", "score_carts"]


_NAN = float("nan")

#: A known customer's boost for a cart at position ``c`` of a held-out set, or None.
Boosts = Callable[[int], np.ndarray | None]


@dataclass(frozen=True)
class HeldOut:
    """Carts with one item held out of each, and the customer of each (-1: anonymous or new)."""

    carts: sp.csr_matrix
    held: np.ndarray
    users: np.ndarray

    def __len__(self) -> int:
        return len(self.held)

    def rows(self, c: int) -> np.ndarray:
        """Return the item rows of cart ``c``."""
        return self.carts.indices[self.carts.indptr[c] : self.carts.indptr[c + 1]].astype(np.int64)

    def subset(self, keep: np.ndarray) -> HeldOut:
        """Return the carts where ``keep`` holds."""
        return HeldOut(self.carts[keep], self.held[keep], self.users[keep])


def hold_out(baskets: Baskets, seed: int = 0, max_carts: int | None = None) -> HeldOut:
    """Hold one random item out of each basket of 2+ distinct items (at most ``max_carts``, sampled)."""
    matrix = sp.csr_matrix(baskets.matrix, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    users = np.asarray(baskets.user_idx, dtype=np.int64)
    big = np.diff(matrix.indptr) >= 2
    matrix, users = matrix[big], users[big]
    rng = np.random.default_rng(seed)
    if max_carts is not None and matrix.shape[0] > max_carts:
        pick = np.sort(rng.choice(matrix.shape[0], max_carts, replace=False))
        matrix, users = matrix[pick], users[pick]
    at = matrix.indptr[:-1] + rng.integers(0, np.diff(matrix.indptr))
    held = matrix.indices[at].astype(np.int64)
    data = np.ones(matrix.nnz, dtype=np.float32)
    data[at] = 0.0
    carts = sp.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)
    carts.eliminate_zeros()
    return HeldOut(carts, held, users)


def fit_calibration(
    model: CartModel, held: HeldOut, seed: int = 0, negatives: int = 200, iterations: int = 25
) -> tuple[float, float]:
    """Fit ``P = sigmoid(a x feature(score) + b)`` by logistic regression on held-out carts.

    Each cart contributes its held-out item (label 1), every item its rows touch, and a sample of
    ``negatives`` untouched items weighted up to stand for all of them (label 0).
    """
    if not len(held):
        return 1.0, 0.0
    rng = np.random.default_rng(seed)
    idle = model.feature(model.idle)
    xs, ys, ws = [], [], []
    n_items = model.n_items
    for c in range(len(held)):
        rows = held.rows(c)
        candidates, scores, _, _ = model.score_cart(rows)
        x = idle.copy()
        x[candidates] = model.feature(scores)
        x[rows] = np.nan
        touched = np.zeros(n_items, dtype=bool)
        touched[candidates] = True
        touched[rows] = False
        rest = np.flatnonzero(~touched)
        sample = rng.choice(rest, min(negatives, len(rest)), replace=False) if len(rest) else rest
        picked = np.concatenate([np.flatnonzero(touched), sample])
        weight = np.concatenate(
            [np.ones(int(touched.sum())), np.full(len(sample), len(rest) / max(len(sample), 1))]
        )
        label = (picked == held.held[c]).astype(np.float64)
        xs.append(x[picked])
        ys.append(label)
        ws.append(weight)
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    ok = np.isfinite(x)
    x, y, w = x[ok], y[ok], w[ok]
    if y.sum() == 0:
        return 1.0, 0.0
    return _logistic(x, y, w, iterations)


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, iterations: int) -> tuple[float, float]:
    """Return (a, b) of a weighted one-feature logistic regression, by damped Newton steps.

    The slope has a ridge of a tenth of the positives' weight, so separable carts (a sparse model
    on a small store) give a steep but finite slope instead of diverging.
    """
    mean = float(np.average(x, weights=w))
    scale = float(np.sqrt(np.average((x - mean) ** 2, weights=w))) or 1.0
    design = np.stack([(x - mean) / scale, np.ones_like(x)], axis=1)
    ridge = np.diag([0.1 * float((w * y).sum()), 0.0])
    coef = np.array([0.0, float(np.log(max(np.average(y, weights=w), 1e-12)))])
    for _ in range(iterations):
        p = sigmoid(design @ coef)
        grad = design.T @ (w * (y - p)) - ridge @ coef
        hess = (design * (w * p * (1.0 - p))[:, None]).T @ design + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        step *= min(1.0, 5.0 / max(float(np.abs(step).max()), 1e-12))
        coef = coef + step
        if np.abs(step).max() < 1e-8:
            break
    a = float(coef[0]) / scale
    return a, float(coef[1]) - a * mean


def score_carts(
    ranker: CartRanker,
    held: HeldOut,
    ks: Sequence[int],
    exponent: float | None = None,
    boosts: Boosts | None = None,
) -> dict[str, float]:
    """Rank every held-out cart through ``ranker`` and return hit@k and revenue@k."""
    cuts = sorted({int(k) for k in ks})
    width = cuts[-1]
    position = np.full(len(held), width, dtype=np.int64)  # where the held-out item ranked (width: not found)
    for c in range(len(held)):
        boost = boosts(c) if boosts is not None else None
        got = ranker.rank(held.rows(c), width, exponent=exponent, boost=boost).rows
        found = np.flatnonzero(got == held.held[c])
        if len(found):
            position[c] = found[0]
    worth = ranker.price[held.held]
    out: dict[str, float] = {}
    for k in cuts:
        hit = position < k
        out[f"crosssell_hit_at_{k}"] = float(hit.mean()) if len(held) else _NAN
        out[f"crosssell_revenue_at_{k}"] = float(worth[hit].sum() / worth.sum()) if worth.sum() > 0 else _NAN
    out["crosssell_baskets"] = len(held)
    return out
