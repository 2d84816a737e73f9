"""Buy again: each customer's own past items, ranked by when each falls due.

For a customer and an item bought in ``n`` distinct orders (purchases without an order id: distinct
days), first on day ``f`` and last on day ``l`` (days since 1970-01-01, UTC):

- interval ``I`` = (l - f) / (n - 1) when n >= 2; else the item's typical interval (the median of
  the customers who bought it twice or more); else the shop's median; at least one day;
- looking ``h`` days ahead from day ``t``, elapsed ``e`` = t + h / 2 - l (the middle of the horizon),
  at least half a day;
- due-ness ``K`` = exp(-ln(e / I)^2 / (2 s^2)): 1 when the item falls due mid-horizon, less the
  earlier or the later it does (an item long overdue was likely given up);
- score = n^a x K: ``a`` weighs how often it was bought (frequency), ``s`` how exact the due date
  is (tolerance).

``DEFAULT_PARAMS`` were chosen on a validation period of Online Retail (``benchmarks/reorder.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import timestamp_ns
from features.ids import IdIndex
from features.matrix import rows_of

__all__ = [
    "DEFAULT_PARAMS",
    "ReorderHistory",
    "ReorderParams",
    "due_scores",
    "purchase_lines",
    "reorder_history",
]

DAY_NS = 86_400 * 10**9
HORIZON_DAYS = 30.0


@dataclass(frozen=True)
class ReorderParams:
    """How a buy-again list weighs frequency against the due date."""

    frequency: float = 1.0  # a
    tolerance: float = 1.0  # s


DEFAULT_PARAMS = ReorderParams(frequency=2.0, tolerance=4.0)  # chosen on Online Retail's validation


@dataclass(frozen=True)
class ReorderHistory:
    """Per customer and item: orders, first and last day of purchase (CSR, one pattern); typical intervals."""

    orders: sp.csr_matrix  # users x items, float32: distinct orders with the item
    first_day: np.ndarray  # aligned to ``orders.data``
    last_day: np.ndarray  # aligned to ``orders.data``
    item_interval: np.ndarray  # items: the typical days between two orders of the item (NaN: unknown)
    shop_interval: float  # the median over every customer and item bought twice or more
    newest_day: int  # the newest purchase day in the data

    def row(self, user_idx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return one customer's items, orders, first and last days."""
        start, end = self.orders.indptr[user_idx], self.orders.indptr[user_idx + 1]
        return (
            self.orders.indices[start:end],
            self.orders.data[start:end],
            self.first_day[start:end],
            self.last_day[start:end],
        )

    def due(
        self,
        user_rows: np.ndarray,
        today: float,
        horizon: float = HORIZON_DAYS,
        params: ReorderParams = DEFAULT_PARAMS,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return, for every item these customers bought: their position in ``user_rows``, the item,
        its score and its interval (days)."""
        starts, ends = self.orders.indptr[user_rows], self.orders.indptr[np.asarray(user_rows) + 1]
        lengths = ends - starts
        position = np.repeat(np.arange(len(lengths)), lengths)
        at = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        at += np.repeat(starts, lengths)
        items, n = self.orders.indices[at], self.orders.data[at].astype(np.float64)
        interval = self.intervals(items, n, self.first_day[at], self.last_day[at])
        return position, items, due_scores(n, interval, self.last_day[at], today, horizon, params), interval

    def intervals(self, items: np.ndarray, n: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Return each pair's interval: its own, else the item's typical one, else the shop's."""
        prior = self.item_interval[items]
        prior = np.where(np.isfinite(prior), prior, self.shop_interval)
        own = (last - first) / np.maximum(n - 1.0, 1.0)
        return np.maximum(np.where(n >= 2, own, prior), 1.0)

    def save(self, path: Path) -> None:
        """Write the arrays to one .npz (no pickle)."""
        np.savez(
            path,
            indptr=self.orders.indptr,
            indices=self.orders.indices,
            orders=self.orders.data.astype(np.float32),
            first_day=self.first_day.astype(np.float64),
            last_day=self.last_day.astype(np.float64),
            item_interval=self.item_interval.astype(np.float64),
            shop=np.array([self.shop_interval, self.newest_day], dtype=np.float64),
        )

    @classmethod
    def load(cls, path: Path, shape: tuple[int, int]) -> ReorderHistory:
        """Read what ``save`` wrote; raise ValueError when the arrays do not fit ``shape``."""
        with np.load(path, allow_pickle=False) as z:
            orders = sp.csr_matrix((z["orders"], z["indices"], z["indptr"]), shape=shape)
            first, last, interval, shop = z["first_day"], z["last_day"], z["item_interval"], z["shop"]
        if not (len(first) == len(last) == orders.nnz and len(interval) == shape[1]):
            raise ValueError(f"arrays do not fit {orders.nnz} pairs over {shape[1]} items")
        return cls(orders, first, last, interval, float(shop[0]), int(shop[1]))


def purchase_lines(events: pd.DataFrame) -> pd.DataFrame:
    """Return purchases with a positive quantity as user_id, item_id, order key and day."""
    buys = events[(events["event_type"] == "purchase").to_numpy() & (events["quantity"].to_numpy() > 0)]
    day = timestamp_ns(buys["timestamp"]) // DAY_NS
    order = buys["order_id"].cat.codes.to_numpy().astype(np.int64)
    return pd.DataFrame(
        {
            "user_id": buys["user_id"].reset_index(drop=True),
            "item_id": buys["item_id"].reset_index(drop=True),
            "order": np.where(order >= 0, order, -1 - day),  # no order id: one order per day
            "day": day,
        }
    )


def reorder_history(events: pd.DataFrame, users: IdIndex, items: IdIndex) -> ReorderHistory:
    """Return each customer's orders, first and last day per item they bought (indexed users and items)."""
    lines = purchase_lines(events)
    u, i = rows_of(lines["user_id"], users), rows_of(lines["item_id"], items)
    keep = (u >= 0) & (i >= 0)
    frame = pd.DataFrame({"u": u[keep], "i": i[keep], "order": lines["order"].to_numpy()[keep],
                          "day": lines["day"].to_numpy()[keep]})  # fmt: skip
    pairs = (
        frame.drop_duplicates(["u", "i", "order"])
        .groupby(["u", "i"], sort=True)["day"]
        .agg(["size", "min", "max"])
        .reset_index()
    )
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs["u"].to_numpy(), minlength=len(users)), out=indptr[1:])
    data = pairs["size"].to_numpy(np.float32)
    orders = sp.csr_matrix((data, pairs["i"].to_numpy(np.int32), indptr), shape=(len(users), len(items)))
    # the pairs are sorted by (u, i): the day arrays below align with orders.data
    first, last = pairs["min"].to_numpy(np.float64), pairs["max"].to_numpy(np.float64)
    repeat = pairs["size"].to_numpy() >= 2
    gaps = (last - first)[repeat] / (pairs["size"].to_numpy()[repeat] - 1)
    typical = pd.Series(gaps).groupby(pairs["i"].to_numpy()[repeat]).median()
    item_interval = np.full(len(items), np.nan)
    item_interval[typical.index.to_numpy()] = typical.to_numpy()
    shop = float(np.median(gaps)) if len(gaps) else 30.0
    newest = int(frame["day"].max()) if len(frame) else 0
    return ReorderHistory(orders, first, last, item_interval, shop, newest)


def due_scores(
    n: np.ndarray,
    interval: np.ndarray,
    last: np.ndarray,
    today: float,
    horizon: float = HORIZON_DAYS,
    params: ReorderParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Return each past item's buy-again score: how often bought x how due mid-horizon (module doc)."""
    elapsed = np.maximum(today + horizon / 2.0 - last, 0.5)
    due = np.exp(-(np.log(elapsed / interval) ** 2) / (2.0 * params.tolerance**2))
    return np.power(n, params.frequency) * due
