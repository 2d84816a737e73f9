"""Baskets: orders (events sharing an order id) and browse sessions, as basket x item matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import timestamp_ns
from features.ids import IdIndex
from features.matrix import rows_of

__all__ = ["Baskets", "order_baskets", "session_baskets"]


@dataclass(frozen=True)
class Baskets:
    """Item sets: row b of ``matrix`` (binary float32) holds the distinct items of basket b."""

    matrix: sp.csr_matrix
    user_idx: np.ndarray
    timestamp: np.ndarray  # int64 ns since the epoch, UTC: the basket's earliest event
    value: np.ndarray

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """Return the number of distinct items in each basket."""
        return np.diff(self.matrix.indptr)


def _assemble(
    basket: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    ts: np.ndarray,
    value: np.ndarray,
    n_items: int,
) -> Baskets:
    """Group rows by basket number into a binary basket x item matrix with per-basket facts."""
    uniq, row = np.unique(basket, return_inverse=True)
    n = len(uniq)
    matrix = sp.csr_matrix((np.ones(len(row), np.float32), (row, items)), shape=(n, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    first = np.full(n, len(row), dtype=np.int64)
    np.minimum.at(first, row, np.arange(len(row)))
    earliest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, row, ts)
    totals = np.bincount(row, weights=value, minlength=n)
    return Baskets(matrix, users[first].astype(np.int32), earliest, totals)


def _rows(events: pd.DataFrame, users: IdIndex, items: IdIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, i = rows_of(events["user_id"], users), rows_of(events["item_id"], items)
    keep = (u >= 0) & (i >= 0)
    return keep, u, i


def _order_lines(
    events: pd.DataFrame, keep: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the mask of ordered purchase lines with a positive quantity, their basket, ts and value."""
    order = events["order_id"].cat.codes.to_numpy().astype(np.int64)
    keep = keep & (order >= 0) & (events["event_type"] == "purchase").to_numpy()
    keep &= events["quantity"].to_numpy() > 0
    value = (events["price"].fillna(0.0) * events["quantity"]).to_numpy(dtype=np.float64)
    return keep, order + offset, timestamp_ns(events["timestamp"]), value


def order_baskets(
    events: pd.DataFrame, users: IdIndex, items: IdIndex, anonymous: pd.DataFrame | None = None
) -> Baskets:
    """Return one basket per order id over purchases with a positive net quantity.

    Orders of ``anonymous`` lines (no user id) follow the identified ones as baskets of their own,
    even where an order id is shared, with ``user_idx == -1``.
    """
    keep, u, i = _rows(events, users, items)
    keep, basket, ts, value = _order_lines(events, keep, 0)
    parts = [(basket[keep], u[keep], i[keep], ts[keep], value[keep])]
    if anonymous is not None and len(anonymous):
        a_item = rows_of(anonymous["item_id"], items)
        offset = len(events["order_id"].cat.categories)
        a_keep, a_basket, a_ts, a_value = _order_lines(anonymous, a_item >= 0, offset)
        a_user = np.full(int(a_keep.sum()), -1, dtype=u.dtype)
        parts.append((a_basket[a_keep], a_user, a_item[a_keep], a_ts[a_keep], a_value[a_keep]))
    basket, u, i, ts, value = (np.concatenate(c) for c in zip(*parts, strict=True))
    return _assemble(basket, u, i, ts, value, len(items))


def session_baskets(
    events: pd.DataFrame,
    users: IdIndex,
    items: IdIndex,
    gap_minutes: float = 30.0,
    event_types: tuple[str, ...] = ("view", "cart", "purchase"),
) -> Baskets:
    """Return browse sessions: a user's events split where the gap exceeds ``gap_minutes``."""
    keep, u, i = _rows(events, users, items)
    keep &= events["event_type"].isin(event_types).to_numpy()
    ts = timestamp_ns(events["timestamp"])[keep]
    u, i = u[keep], i[keep]
    order = np.lexsort((ts, u))
    u, i, ts = u[order], i[order], ts[order]
    gap = int(gap_minutes * 60 * 1e9)
    new = np.ones(len(u), dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | ((ts[1:] - ts[:-1]) > gap)
    session = np.cumsum(new) - 1
    return _assemble(session, u, i, ts, np.zeros(len(u)), len(items))
