"""Item-item association statistics from baskets: co-occurrence, support, confidence, lift.

For items ``i`` and ``j`` over ``n`` baskets: ``count(i, j)`` baskets hold both,
``support = count(i, j) / n``, ``confidence(j | i) = count(i, j) / count(i)`` and
``lift(i, j) = confidence(j | i) / (count(j) / n)``. Only pairs with
``count(i, j) >= min_count`` are kept, so the matrices stay sparse. For a set ``B`` of ``k``
items: ``lift(B) = count(B) n^(k-1) / prod count(x)`` (the pair lift when ``k = 2``) and the
conservative ``confidence(B) = count(B) / max count(x)``.

These functions are the one definition: similar items, bundles and cross-sell explanations
(whose compiled kernel is checked against ``pair_statistics`` by a test) all report them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from features.baskets import Baskets

__all__ = ["Associations", "association_stats", "pair_statistics", "set_confidence", "set_lift"]


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


def pair_statistics(
    joint: np.ndarray, count_i: np.ndarray, count_j: np.ndarray, n_baskets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return support, confidence(j | i) and lift of pairs from their counts (0 where a count is 0)."""
    joint = np.asarray(joint, dtype=np.float64)
    n = float(max(n_baskets, 1))
    confidence = np.divide(joint, count_i, out=np.zeros_like(joint), where=np.asarray(count_i) > 0)
    base = np.asarray(count_j, dtype=np.float64) / n
    lift = np.divide(confidence, base, out=np.zeros_like(joint), where=base > 0)
    return joint / n, confidence, lift


def set_lift(joint: np.ndarray, member_counts: np.ndarray, n_baskets: int) -> np.ndarray:
    """Return ``count(B) n^(k-1) / prod count(x)`` per set (rows of ``member_counts``: k counts each)."""
    members = np.asarray(member_counts, dtype=np.float64)
    n = float(max(n_baskets, 1))
    return np.asarray(joint, dtype=np.float64) * n ** (members.shape[1] - 1) / members.prod(axis=1)


def set_confidence(joint: np.ndarray, member_counts: np.ndarray) -> np.ndarray:
    """Return ``count(B) / max count(x)``: the share of its best seller's baskets holding the set."""
    return np.asarray(joint, dtype=np.float64) / np.asarray(member_counts, dtype=np.float64).max(axis=1)


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
