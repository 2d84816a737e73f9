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

    def base_rate(self) -> np.ndarray:
        """Return the share of baskets holding each item."""
        return self.item_counts / max(self.n_baskets, 1)


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
