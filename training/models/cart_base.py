"""The cart model interface: learn a sparse ``W`` and a prior from baskets, score carts, calibrate P.

For a cart ``C``::

    agg_j   = sum_{i in C} W[i, j]      or  max_{i in C} W[i, j]     (the model's ``aggregate``)
    score_j = finish(agg_j)             for items touched by a cart row's stored cells
    score_j = idle_j = finish(0)        for every other item

so an untouched item scores by its prior alone, and a cart's ranking needs only its rows' cells.
Counts are weighted: an order ``d`` days older than the newest weighs ``0.5 ** (d / half_life_days)``,
times ``size ** -size_power`` for an order of ``size`` lines. ``calibration`` maps a score to
``P(j is added | cart) = sigmoid(a x + b)``, with ``x = logit(score)`` for kinds whose scores are
probabilities and ``x = log(score + floor)`` for the others (``floor``: 1% of the median cell of
``W``); ``(a, b)`` is fitted on validation carts, and without it ``(1, 0)`` applies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from training.models.base import ModelError
from training.models.cart_kernels import gather, scratch
from training.models.params import Hyperparameters

__all__ = [
    "CartModel",
    "CartParams",
    "distinct",
    "recency_weights",
    "sigmoid",
    "stored_cells",
    "strongest",
]


_TIE = 1e-9  # a prior this small only breaks ties among items a cart says nothing about
_DAY_NS = 86_400 * 10**9


def sigmoid(logit: np.ndarray) -> np.ndarray:
    """Return ``1 / (1 + exp(-logit))``, clipped so that no exponent overflows."""
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))


def recency_weights(timestamps: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """Return each order's weight ``0.5 ** (age / half_life)``, age counted from the newest order."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if half_life_days is None or not len(ts):
        return np.ones(len(ts), dtype=np.float64)
    age_days = (ts.max() - ts) / _DAY_NS
    return np.power(0.5, age_days / float(half_life_days))


def strongest(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Return ``matrix`` with only the ``k`` largest stored values of each row (ties: lower column)."""
    m = sp.csr_matrix(matrix, copy=True)
    m.sum_duplicates()
    lengths = np.diff(m.indptr)
    if not m.nnz or lengths.max() <= k:
        return m
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(m.nnz) - np.repeat(m.indptr[:-1], lengths)
    keep = np.zeros(m.nnz, dtype=bool)
    keep[order[rank < k]] = True
    out = sp.csr_matrix((m.data[keep], m.indices[keep], np.r_[0, np.cumsum(np.minimum(lengths, k))]), m.shape)
    out.sort_indices()
    return out


def distinct(values: np.ndarray, size: int) -> np.ndarray:
    """Return the distinct values (all in ``[0, size)``) in no particular order, without a sort."""
    values = np.asarray(values, dtype=np.int64)
    at = np.arange(len(values))
    slot = np.empty(size, dtype=np.int64)  # only the entries of ``values`` are written and read
    slot[values] = at  # one position per value wins
    return values[slot[values] == at]


def stored_cells(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for every stored cell of ``rows``, its position in ``rows`` and its index into ``data``."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    which = np.repeat(np.arange(len(rows)), lengths)
    first = np.cumsum(lengths) - lengths
    return which, np.arange(int(lengths.sum())) + (starts - first)[which]


def _weighted_counts(
    baskets: sp.csr_matrix, weights: np.ndarray, min_count: int
) -> tuple[sp.csr_matrix, np.ndarray, int]:
    """Return weighted pair counts (zero diagonal, pairs in fewer than ``min_count`` orders dropped)."""
    x = sp.csr_matrix(baskets, dtype=np.float64, copy=True)
    x.data[:] = 1.0
    w = np.asarray(weights, dtype=np.float64)
    xt = x.T.tocsr()  # transposed once, for both products
    pairs = sp.csr_matrix(xt @ x)
    pairs.sort_indices()
    weighted = pairs  # unweighted (no recency, no size damping): the same counts
    if not np.all(w == 1.0):
        scaled = xt.copy()
        scaled.data *= w[scaled.indices]  # xt @ diag(w), without a third product
        weighted = sp.csr_matrix(scaled @ x)
        weighted.sort_indices()
        if not np.array_equal(pairs.indices, weighted.indices):
            raise ModelError("weighted and plain pair counts must share their cells")
    keep = pairs.data >= min_count
    rows = np.repeat(np.arange(pairs.shape[0]), np.diff(pairs.indptr))
    keep &= rows != pairs.indices
    out = sp.csr_matrix(
        (
            weighted.data[keep],
            pairs.indices[keep],
            np.r_[0, np.cumsum(np.bincount(rows[keep], minlength=pairs.shape[0]))],
        ),
        shape=pairs.shape,
    )
    item_counts = np.asarray(x.T @ w).ravel()
    return out, item_counts, int(x.shape[0])


@dataclass(frozen=True)
class CartParams(Hyperparameters):
    """What every cart model shares: neighbours kept per item, recency, pair floor, size damping."""

    neighbours: int = 200
    half_life_days: float | None = None
    min_count: int = 2
    size_power: float = 0.0


class CartModel(ABC):
    """Learn ``W`` and a prior from order baskets; score carts from their rows' stored cells."""

    kind: ClassVar[str]
    aggregate: ClassVar[Literal["sum", "max"]] = "sum"
    probabilistic: ClassVar[bool] = False  # scores are already probabilities
    Params: ClassVar[type[CartParams]] = CartParams

    def __init__(self, **params: Any) -> None:
        self.params = self.Params.build(f"cart model {self.kind}", params)
        self.weights = sp.csr_matrix((0, 0), dtype=np.float32)
        self.prior = np.zeros(0)
        self.floor = 1e-12
        self.idle = np.zeros(0)
        self.calibration: tuple[float, float] | None = None

    @property
    def n_items(self) -> int:
        """Return the number of items."""
        return len(self.prior)

    def fit(self, baskets: sp.csr_matrix, timestamps: np.ndarray) -> None:
        """Learn from orders x items (binary) with each order's timestamp (int64 ns)."""
        p = self.params
        w = recency_weights(timestamps, p.half_life_days)
        sizes = np.maximum(np.diff(sp.csr_matrix(baskets).indptr), 1)
        w = w * np.power(sizes.astype(np.float64), -p.size_power)
        counts, item_counts, _ = _weighted_counts(baskets, w, p.min_count)
        total = max(float(w.sum()), 1e-12)
        learned = self._learn(sp.csr_matrix(baskets), w, counts, item_counts)
        pruned = strongest(learned, p.neighbours)
        self.restore({"weights": pruned, "prior": item_counts / total})
        self.calibration = None

    @abstractmethod
    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        """Return ``W`` before pruning to the strongest neighbours."""

    def finish(self, agg: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Return the score of ``items`` from their aggregated cells (sum models add a tie prior)."""
        return agg + _TIE * self.prior[items]

    def cells(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return, for every stored cell of ``rows``, its position in ``rows`` and its index into ``W``."""
        return stored_cells(self.weights, rows)

    def score_cart(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return the touched items (distinct, first touch first), their scores, and the cart's cells.

        The cells are ``which`` (each stored cell's position in ``rows``) and ``cells`` (its index
        into ``W``), in the order of ``rows``.
        """
        w = self.weights
        rows = np.asarray(rows, dtype=np.int64)
        work = scratch(self.n_items)
        candidates, agg, which, cells = gather(
            w.indptr, w.indices, w.data, rows, self.aggregate == "max", work.values, work.flags
        )
        return candidates, self.finish(agg, candidates), which, cells

    def score_dense(self, rows: np.ndarray) -> np.ndarray:
        """Return every item's score for a cart (dense): idle scores, overwritten where touched."""
        out = self.idle.copy()
        candidates, scores, _, _ = self.score_cart(rows)
        out[candidates] = scores
        return out

    def feature(self, scores: np.ndarray) -> np.ndarray:
        """Return the monotone transform of scores that calibration is linear in."""
        s = np.asarray(scores, dtype=np.float64)
        if self.probabilistic:
            p = np.clip(s, 1e-9, 1.0 - 1e-9)
            return np.log(p) - np.log1p(-p)
        return np.log(np.maximum(s, 0.0) + self.floor)

    def logit(self, scores: np.ndarray) -> np.ndarray:
        """Return the calibrated log-odds of the item being added: ``a x feature + b``."""
        a, b = self.calibration if self.calibration is not None else (1.0, 0.0)
        return a * self.feature(scores) + b

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Return calibrated P(item is added | cart) for scores."""
        return sigmoid(self.logit(scores))

    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return the learned state to save."""
        return {"weights": self.weights, "prior": self.prior}

    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set the learned state from saved arrays."""
        self.prior = np.asarray(arrays["prior"], dtype=np.float64)
        self.weights = sp.csr_matrix(arrays["weights"], dtype=np.float32)
        self.weights.sort_indices()
        if self.weights.shape != (self.n_items, self.n_items):
            raise ModelError(f"cart weights {self.weights.shape} do not match {self.n_items} items")
        data = self.weights.data
        #: The score below which calibration stops telling items apart: 1% of a typical cell.
        self.floor = float(0.01 * np.median(np.abs(data))) if len(data) else 1e-12
        #: Every item's score when no cart row touches it.
        self.idle = self.finish(np.zeros(self.n_items), np.arange(self.n_items))
