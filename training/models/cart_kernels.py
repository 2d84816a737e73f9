"""Compiled loops of the cart ranking: a cart's cells, its best ``n`` items, each item's anchor.

A 20-item cart reads about 1,700 stored cells; done as a chain of numpy calls, the per-call cost
(dozens of calls of a few microseconds) outweighs the work. Each function here is one pass in
machine code (numba, compiled once and cached on disk), so a cold cart costs tens of microseconds.
They release the GIL and are the only implementation: offline evaluation and the service call
the same ones through ``CartModel.score_cart`` and ``CartRanker.rank``.

Work arrays the size of the catalog come from ``scratch``: one set per thread, reused, and left
clean by every kernel (each resets only the entries it touched). Allocating them per call made the
allocator return and re-fault them from the kernel, which cost more than the ranking.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit

__all__ = ["Scratch", "anchors", "explain", "gather", "scratch", "select", "warm"]


class Scratch(NamedTuple):
    """One thread's work arrays for a catalog: values (any), flags (False), marks (0), slots (-1)."""

    values: np.ndarray
    flags: np.ndarray
    marks: np.ndarray
    slots: np.ndarray


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.by_size: dict[int, Scratch] = {}


_local = _PerThread()


def scratch(n_items: int) -> Scratch:
    """Return this thread's clean work arrays for a catalog of ``n_items``."""
    found = _local.by_size.get(n_items)
    if found is None:
        found = _local.by_size[n_items] = Scratch(
            np.empty(n_items, dtype=np.float64),
            np.zeros(n_items, dtype=np.bool_),
            np.zeros(n_items, dtype=np.int8),
            np.full(n_items, -1, dtype=np.int64),
        )
    return found


@njit(cache=True, nogil=True)
def gather(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    rows: np.ndarray,
    use_max: bool,
    agg: np.ndarray,
    seen: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the items a cart's rows touch (first touch first), their sum or max, ``which``, ``cells``.

    ``agg`` and ``seen`` are ``Scratch.values`` and ``Scratch.flags``.
    """
    total = 0
    for r in rows:
        total += indptr[r + 1] - indptr[r]
    which = np.empty(total, dtype=np.int64)
    cells = np.empty(total, dtype=np.int64)
    touched = np.empty(total, dtype=np.int64)
    k = m = 0
    for pos in range(len(rows)):
        r = rows[pos]
        for c in range(indptr[r], indptr[r + 1]):
            j = indices[c]
            v = np.float64(data[c])
            which[k] = pos
            cells[k] = c
            k += 1
            if not seen[j]:
                seen[j] = True
                touched[m] = j
                m += 1
                agg[j] = v
            elif use_max:
                agg[j] = max(agg[j], v)
            else:
                agg[j] += v
    out = np.empty(m, dtype=np.float64)
    for i in range(m):
        out[i] = agg[touched[i]]
        seen[touched[i]] = False
    return touched[:m].copy(), out, which, cells


@njit(cache=True, nogil=True)
def _better(rank: float, row: int, than_rank: float, than_row: int) -> bool:
    return rank > than_rank or (rank == than_rank and row < than_row)


@njit(cache=True, nogil=True)
def _mark(
    candidates: np.ndarray,
    cart_rows: np.ndarray,
    sub_indptr: np.ndarray,
    sub_indices: np.ndarray,
    leave_out: bool,
    mark: np.ndarray,
    clear: bool = False,
) -> int:
    """Mark 1 a candidate, 3 a substitute left out (when ``leave_out``), 2 a cart item; count the 3s.

    With ``clear``, set those marks back to 0 for the next cart.
    """
    for j in candidates:
        mark[j] = 0 if clear else 1
    left_out = 0
    if leave_out:
        for r in cart_rows:
            for c in range(sub_indptr[r], sub_indptr[r + 1]):
                s = sub_indices[c]
                if clear:
                    mark[s] = 0
                elif mark[s] != 3:
                    mark[s] = 3  # counted once
                    left_out += 1
    for r in cart_rows:
        mark[r] = 0 if clear else 2
    return left_out


@njit(cache=True, nogil=True)
def _insert(
    rows: np.ndarray, ranks: np.ndarray, probs: np.ndarray, size: int, j: int, rank: float, p: float
) -> int:
    """Insert row ``j`` into the best-first lists (capacity ``len(rows)``) if it ranks; return the size."""
    n = len(rows)
    if size == n and not _better(rank, j, ranks[size - 1], rows[size - 1]):
        return size
    at = size if size < n else n - 1
    while at > 0 and _better(rank, j, ranks[at - 1], rows[at - 1]):
        rows[at], ranks[at], probs[at] = rows[at - 1], ranks[at - 1], probs[at - 1]
        at -= 1
    rows[at], ranks[at], probs[at] = j, rank, p
    return size + 1 if size < n else size


@njit(cache=True, nogil=True)
def select(
    candidates: np.ndarray,
    prob: np.ndarray,
    cart_rows: np.ndarray,
    sub_indptr: np.ndarray,
    sub_indices: np.ndarray,
    leave_out: bool,
    in_stock: np.ndarray,
    price: np.ndarray,
    g: float,
    order: np.ndarray,
    idle_prob: np.ndarray,
    n: int,
    mark: np.ndarray,
    factor: np.ndarray,
    hidden: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Return the best ``n`` rows by ``P x price ** g x factor`` (ties: lower row), rank, P, substitutes.

    Candidates are the cart's touched items with their P; every other in-stock item competes at its
    idle P x ``factor``, read from ``order`` (in-stock items by that, best first; ``factor`` is 1 but
    for rules). Cart items, ``hidden`` rows
    and, when ``leave_out``, the cart's substitutes (``sub_indptr``/``sub_indices``) never rank; nor
    does an item out of stock. ``mark`` is ``Scratch.marks``.
    """
    left_out = _mark(candidates, cart_rows, sub_indptr, sub_indices, leave_out, mark)
    for h in hidden:
        mark[h] = 2
    best_rows = np.empty(n, dtype=np.int64)
    best_rank = np.empty(n, dtype=np.float64)
    best_prob = np.empty(n, dtype=np.float64)
    size = 0
    total = len(candidates)
    taken_idle = 0
    at_idle = 0
    i = 0
    while True:
        if i < total:
            j = candidates[i]
            p = prob[i]
            i += 1
            if mark[j] != 1 or not in_stock[j]:
                continue
        else:
            if taken_idle >= n or at_idle >= len(order):
                break
            j = order[at_idle]
            at_idle += 1
            if mark[j] != 0:
                continue
            taken_idle += 1
            p = idle_prob[j]
        rank = (p * price[j] ** g if g != 0.0 else p) * factor[j]
        if rank != rank:  # NaN ranks last
            rank = -np.inf
        size = _insert(best_rows, best_rank, best_prob, size, j, rank, p)
    _mark(candidates, cart_rows, sub_indptr, sub_indices, leave_out, mark, True)
    for h in hidden:
        mark[h] = 0
    return best_rows[:size].copy(), best_rank[:size].copy(), best_prob[:size].copy(), left_out


@njit(cache=True, nogil=True)
def anchors(
    chosen: np.ndarray,
    cart_rows: np.ndarray,
    which: np.ndarray,
    cells: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    slot: np.ndarray,
) -> np.ndarray:
    """Return per chosen item the cart row whose cell on it is largest (ties: earlier; -1: none).

    ``slot`` is ``Scratch.slots``.
    """
    for p in range(len(chosen)):
        slot[chosen[p]] = p
    best = np.full(len(chosen), -np.inf)
    by = np.full(len(chosen), -1, dtype=np.int64)
    for k in range(len(cells)):
        p = slot[indices[cells[k]]]
        if p < 0:
            continue
        v = np.float64(data[cells[k]])
        if v > best[p] or (v == best[p] and (by[p] < 0 or which[k] < by[p])):
            best[p] = v
            by[p] = which[k]
    out = np.full(len(chosen), -1, dtype=np.int64)
    for p in range(len(chosen)):
        slot[chosen[p]] = -1
        if by[p] >= 0:
            out[p] = cart_rows[by[p]]
    return out


@njit(cache=True, nogil=True)
def explain(
    chosen: np.ndarray,
    anchor_rows: np.ndarray,
    prob: np.ndarray,
    rank: np.ndarray,
    price: np.ndarray,
    pair_indptr: np.ndarray,
    pair_indices: np.ndarray,
    pair_data: np.ndarray,
    item_counts: np.ndarray,
    n_baskets: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Return per chosen item its answer's figures and its co-purchase count with its anchor.

    The figures (rows, rounded as answered): P (6 decimals), expected value ``P x price`` (4),
    and with the anchor ``i``: support ``count(i, j) / n`` (6), confidence ``count(i, j) / count(i)``
    (6), lift ``confidence / (count(j) / n)`` (4), the rank score (6); 0 without an anchor or a count.
    ``pair_*`` is the co-purchase count matrix (CSR, sorted indices).
    """
    m = len(chosen)
    n = max(n_baskets, 1)
    out = np.zeros((6, m), dtype=np.float64)
    counts = np.zeros(m, dtype=np.float64)
    for p in range(m):
        j, a = chosen[p], anchor_rows[p]
        count = 0.0
        if a >= 0:
            lo, hi = pair_indptr[a], pair_indptr[a + 1]
            at = lo + np.searchsorted(pair_indices[lo:hi], j)
            if at < hi and pair_indices[at] == j:
                count = np.float64(pair_data[at])
        counts[p] = count
        confidence = count / max(np.float64(item_counts[a]), 1.0) if count > 0 else 0.0
        base = item_counts[j] / n
        lift = confidence / base if base > 0 and count > 0 else 0.0
        out[0, p] = np.rint(prob[p] * 1e6) / 1e6
        out[1, p] = np.rint(prob[p] * price[j] * 1e4) / 1e4
        out[2, p] = np.rint(count / n * 1e6) / 1e6
        out[3, p] = np.rint(confidence * 1e6) / 1e6
        out[4, p] = np.rint(lift * 1e4) / 1e4
        out[5, p] = np.rint(rank[p] * 1e6) / 1e6
    return out, counts


def warm() -> None:
    """Compile every kernel for the artifact's array types (or load them from numba's disk cache)."""
    w = sp.csr_matrix(np.eye(3, k=1, dtype=np.float32))
    rows, work = np.array([0], dtype=np.int64), scratch(3)
    touched, agg, which, cells = gather(w.indptr, w.indices, w.data, rows, False, work.values, work.flags)
    subs = sp.csr_matrix((3, 3), dtype=bool)
    order, price = np.arange(3, dtype=np.int64), np.ones(3)
    chosen, rank, prob, _ = select(
        touched, agg, rows, subs.indptr, subs.indices, True, np.ones(3, dtype=bool), price, 1.0, order,
        price, 2, work.marks, np.ones(3), np.zeros(0, dtype=np.int64),
    )  # fmt: skip
    found = anchors(chosen, rows, which, cells, w.indices, w.data, work.slots)
    explain(chosen, found, prob, rank, price, w.indptr, w.indices, w.data, price, 1)
