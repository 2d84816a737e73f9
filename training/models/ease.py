"""EASE's item-item weights B (Steck 2019), exactly for small catalogs and sparsely for large ones.

Column ``j`` of B is a ridge regression of item ``j``'s column on every other item's:
``B[-j, j] = (G[-j, -j] + lambda I)^-1 G[-j, j]`` with ``G = X^T X``; the closed form
``B = I - P / diag(P)``, ``P = (G + lambda I)^-1``, gives all columns at once but is cubic in items
and holds three dense item x item matrices. ``sparse_ease`` restricts each regression to the item's
``neighbours`` strongest co-occurring items and to the Gram entries among them that are one of the
pair's own ``neighbours`` (a pruned Gram): linear in items, ``neighbours`` cells per column. With
``neighbours`` at least the number of items it equals the closed form.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from numba import njit
from tqdm import tqdm

from training.models.cart_base import strongest

__all__ = ["dense_ease", "sparse_ease"]

logger = logging.getLogger(__name__)

#: Items whose local systems are solved in one batch.
_BATCH = 512
#: Gram columns computed at a time (bounds the peak memory of X^T X).
_GRAM_BLOCK = 4096


def dense_ease(gram: np.ndarray, regularization: float) -> np.ndarray:
    """Return B from a dense Gram matrix (overwritten) in closed form."""
    n = gram.shape[0]
    gram[np.diag_indices(n)] += regularization
    p = np.linalg.inv(gram)
    b = p / (-np.diag(p))
    b[np.diag_indices(n)] = 0.0
    return b


def _neighbour_gram(x: sp.csr_matrix, k: int) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Return (each item's ``k`` strongest off-diagonal Gram cells, all of them, the diagonal)."""
    xc = sp.csc_matrix(x)
    n = x.shape[1]
    parts, full, diagonal = [], [], np.zeros(n)
    for start in range(0, n, _GRAM_BLOCK):
        stop = min(start + _GRAM_BLOCK, n)
        block = sp.csr_matrix(xc[:, start:stop].T @ x)  # rows start..stop of G
        coo = block.tocoo()
        on_diagonal = coo.col == coo.row + start
        diagonal[coo.row[on_diagonal] + start] = coo.data[on_diagonal]
        off = ~on_diagonal & (coo.data > 0)
        rest = sp.csr_matrix((coo.data[off], (coo.row[off], coo.col[off])), shape=block.shape)
        parts.append(strongest(rest, k))
        full.append(rest)
    return sp.csr_matrix(sp.vstack(parts)), sp.csr_matrix(sp.vstack(full)), diagonal


@njit(cache=True, nogil=True)
def _gather(  # pragma: no cover - compiled
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    neighbours: np.ndarray,
    counts: np.ndarray,
    diagonal: np.ndarray,
    regularization: float,
    out: np.ndarray,
) -> None:
    """Fill ``out[i]`` with the Gram among item i's neighbours, plus the diagonal and lambda.

    Each neighbour's Gram row is read by scanning it (short rows) or by a binary search per other
    neighbour (long rows), whichever reads less; the matrix is symmetric, so each pair is read once.
    """
    k = out.shape[1]
    slot = np.full(len(diagonal), -1, dtype=np.int64)
    for i in range(out.shape[0]):
        m = counts[i]
        for r in range(k):
            for c in range(k):
                out[i, r, c] = 0.0
        for r in range(m):
            slot[neighbours[i, r]] = r
        for r in range(k):
            if r >= m:
                out[i, r, r] = 1.0
                continue
            a = neighbours[i, r]
            out[i, r, r] = diagonal[a] + regularization
            lo, hi = indptr[a], indptr[a + 1]
            if hi - lo <= 8 * m:
                for p in range(lo, hi):
                    c = slot[indices[p]]
                    if c > r:
                        out[i, r, c] = data[p]
                        out[i, c, r] = data[p]
                continue
            for c in range(r + 1, m):
                b = neighbours[i, c]
                left, right = lo, hi
                while left < right:
                    mid = (left + right) // 2
                    if indices[mid] < b:
                        left = mid + 1
                    else:
                        right = mid
                if left < hi and indices[left] == b:
                    out[i, r, c] = data[left]
                    out[i, c, r] = data[left]
        for r in range(m):
            slot[neighbours[i, r]] = -1


def sparse_ease(x: sp.csr_matrix, regularization: float, neighbours: int) -> sp.csr_matrix:
    """Return a sparse B (rows: the item that predicts; columns: the item predicted).

    A progress bar shows on a terminal only (``disable=None``), never in logs or tests.
    """
    n = x.shape[1]
    k = max(1, min(neighbours, n - 1))
    strongest, pruned, diagonal = _neighbour_gram(sp.csr_matrix(x, dtype=np.float64), k)
    pruned.sort_indices()
    counts = np.diff(strongest.indptr).astype(np.int64)
    padded = np.zeros((n, k), dtype=np.int64)
    rhs = np.zeros((n, k))
    slot = np.arange(strongest.nnz) - np.repeat(strongest.indptr[:-1], counts)
    rows = np.repeat(np.arange(n), counts)
    padded[rows, slot] = strongest.indices
    rhs[rows, slot] = strongest.data
    solved = np.zeros((n, k))
    system = np.empty((min(_BATCH, n), k, k))
    with tqdm(total=n, desc=f"sparse EASE on {n:,} items", unit="item", disable=None, leave=False) as bar:
        for start in range(0, n, _BATCH):
            stop = min(start + _BATCH, n)
            batch = system[: stop - start]
            _gather(
                pruned.indptr,
                pruned.indices,
                pruned.data,
                padded[start:stop],
                counts[start:stop],
                diagonal,
                float(regularization),
                batch,
            )
            solved[start:stop] = np.linalg.solve(batch, rhs[start:stop, :, None])[:, :, 0]
            bar.update(stop - start)
    keep = slot >= 0
    weights = solved[rows, slot][keep]
    logger.info("sparse ease: %d items, %d neighbours each, %d cells", n, k, len(weights))
    return sp.csr_matrix((weights, (padded[rows, slot], rows)), shape=(n, n), dtype=np.float32)
