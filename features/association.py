"""Item-item association statistics from baskets: co-occurrence, support, confidence, lift.

For items ``i`` and ``j`` over ``n`` baskets: ``count(i, j)`` baskets hold both,
``support = count(i, j) / n``, ``confidence(j | i) = count(i, j) / count(i)`` and
``lift(i, j) = confidence(j | i) / (count(j) / n)``. Only pairs with
``count(i, j) >= min_count`` are kept, so the matrices stay sparse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from features.baskets import Baskets

__all__ = ["Associations", "association_stats"]


@dataclass(frozen=True)
class Associations:
    """Pair counts (items x items, zero diagonal) with the per-item basket counts behind them."""

    pair_counts: sp.csr_matrix
    item_counts: np.ndarray
    n_baskets: int

    @property
    def n_items(self) -> int:
        """Return the number of items."""
        return len(self.item_counts)

    def _scaled(self, row_scale: np.ndarray, col_scale: np.ndarray | None = None) -> sp.csr_matrix:
        """Return pair counts with each stored cell multiplied by row and column factors."""
        out = self.pair_counts.astype(np.float64, copy=True)
        rows = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
        out.data *= row_scale[rows]
        if col_scale is not None:
            out.data *= col_scale[out.indices]
        return out

    def lift(self) -> sp.csr_matrix:
        """Return confidence(j | i) / P(j)."""
        base = self.item_counts / max(self.n_baskets, 1)
        return self._scaled(1.0 / np.maximum(self.item_counts, 1), 1.0 / np.maximum(base, 1e-12))

    def miss_log(self, shrinkage: float = 5.0) -> sp.csr_matrix:
        """Return log(1 - c(i, j) / (c(i) + shrinkage)) per stored pair: the cart model's weights."""
        shrunk = self._scaled(1.0 / (self.item_counts + float(shrinkage)))
        shrunk.data = np.log1p(-np.minimum(shrunk.data, 1.0 - 1e-6))
        return shrunk

    def base_rate(self) -> np.ndarray:
        """Return the share of baskets holding each item."""
        return self.item_counts / max(self.n_baskets, 1)

    def cart_probability(
        self, carts: sp.csr_matrix, shrinkage: float = 5.0, miss_log: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Return P(j is added | cart) per cart row (dense), a shrunk noisy-or over cart items.

        ``P = 1 - (1 - P(j)) * prod_i (1 - c(i, j) / (c(i) + shrinkage))`` over the cart's items
        ``i``: each cart item is an independent chance to pull ``j`` in, with confidences shrunk
        towards zero when item ``i`` is rare, on top of ``j``'s base rate ``P(j)``.
        """
        weights = self.miss_log(shrinkage) if miss_log is None else miss_log
        binary = sp.csr_matrix(carts, dtype=np.float64)
        binary.data[:] = 1.0
        log_miss = np.asarray((binary @ weights).toarray())
        return 1.0 - (1.0 - self.base_rate())[None, :] * np.exp(log_miss)


def association_stats(
    baskets: Baskets, min_count: int = 2, max_basket_size: int | None = None
) -> Associations:
    """Count co-occurrences of distinct items in baskets with sparse products (XᵀX)."""
    x = baskets.matrix
    if max_basket_size is not None:
        x = x[baskets.sizes <= max_basket_size]
    x = sp.csr_matrix(x, dtype=np.float32)
    x.data[:] = 1.0
    item_counts = np.asarray(x.sum(axis=0)).ravel().astype(np.int64)
    pairs = sp.csr_matrix(x.T @ x)
    pairs.setdiag(0)
    pairs.data[pairs.data < min_count] = 0
    pairs.eliminate_zeros()
    pairs.sort_indices()
    return Associations(pairs.astype(np.float32), item_counts, int(x.shape[0]))
