"""Train/test splits without leakage: chronological and per-user leave-last-k.

Test rows whose user or item never occurs in train are kept apart in ``cold`` and counted, so
they are never silently mixed into the warm test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.columns import timestamp_ns
from features.errors import InvalidParameter

__all__ = ["Split", "chronological_split", "leave_last_k_split"]


@dataclass(frozen=True)
class Split:
    """Train rows, warm test rows (user and item seen in train), and cold test rows."""

    train: pd.DataFrame
    test: pd.DataFrame
    cold: pd.DataFrame
    method: str
    cutoff: pd.Timestamp | None = None
    dropped_rows: int = 0

    def report(self) -> dict[str, Any]:
        """Return counts of rows, users and items, including those unseen in train."""
        train_users = set(self.train["user_id"].unique())
        train_items = set(self.train["item_id"].unique())
        all_test = pd.concat([self.test, self.cold])
        test_users = set(all_test["user_id"].unique())
        test_items = set(all_test["item_id"].unique())
        return {
            "method": self.method,
            "cutoff": None if self.cutoff is None else self.cutoff.isoformat(),
            "train_rows": len(self.train),
            "test_rows": len(self.test),
            "cold_rows": len(self.cold),
            "dropped_rows": self.dropped_rows,
            "train_users": len(train_users),
            "train_items": len(train_items),
            "test_users": len(test_users),
            "test_users_unseen": len(test_users - train_users),
            "test_items_unseen": len(test_items - train_items),
        }


def _separate(train: pd.DataFrame, test: pd.DataFrame, method: str, cutoff: pd.Timestamp | None) -> Split:
    """Move test rows with a user or item unseen in train into ``cold``."""
    seen_u = test["user_id"].isin(train["user_id"].unique())
    seen_i = test["item_id"].isin(train["item_id"].unique())
    warm = (seen_u & seen_i).to_numpy()
    return Split(train, test[warm], test[~warm], method, cutoff)


def chronological_split(
    events: pd.DataFrame,
    cutoff: str | pd.Timestamp | None = None,
    test_fraction: float | None = None,
) -> Split:
    """Train on events strictly before the cutoff, test on events at or after it.

    Give ``cutoff`` (a date or time, UTC when naive) or ``test_fraction`` (the latest share of
    events, by time, that tests).
    """
    ts = events["timestamp"]
    if cutoff is None:
        if test_fraction is None or not 0.0 < test_fraction < 1.0:
            raise InvalidParameter(f"test_fraction must be between 0 and 1, got {test_fraction}")
        point = pd.Timestamp(ts.quantile(1.0 - test_fraction))  # type: ignore[arg-type]
    else:
        point = pd.Timestamp(cutoff)
    point = point.tz_localize("UTC") if point.tzinfo is None else point.tz_convert("UTC")
    is_test = (ts >= point).to_numpy()
    if is_test.all() or not is_test.any():
        raise InvalidParameter(f"cutoff {point} leaves no train or no test rows ({ts.min()} .. {ts.max()})")
    return _separate(events[~is_test], events[is_test], "chronological", point)


def leave_last_k_split(events: pd.DataFrame, k: int = 1, event_type: str | None = "purchase") -> Split:
    """Hold out each user's last ``k`` visits: the events (of ``event_type``; all when None) at
    their ``k`` latest distinct timestamps, for users with more than ``k`` such timestamps.

    An order's lines share a timestamp, so leave-last-1 holds out the whole last order. Other
    events of a held-out user at or after their first test time are dropped (and counted), so no
    train event of a user is as late as any of their test events.
    """
    if k < 1:
        raise InvalidParameter(f"k must be >= 1, got {k}")
    eligible = np.ones(len(events), dtype=bool)
    if event_type is not None:
        eligible = (events["event_type"] == event_type).to_numpy()
    users = events["user_id"].cat.codes.to_numpy().astype(np.int64)
    ts = timestamp_ns(events["timestamp"])
    visits = pd.DataFrame({"u": users[eligible], "t": ts[eligible]}).drop_duplicates()
    visits = visits.sort_values(["u", "t"])
    rank = visits.groupby("u").cumcount(ascending=False).to_numpy()
    size = visits.groupby("u")["t"].transform("size").to_numpy()
    held = visits[(rank < k) & (size > k)]
    first_test = held.groupby("u")["t"].min()
    start = np.full(int(users.max()) + 1 if len(users) else 0, np.iinfo(np.int64).max)
    start[first_test.index.to_numpy()] = first_test.to_numpy()
    test = eligible & (ts >= start[users])
    train = ts < start[users]
    split = _separate(events[train], events[test], f"leave_last_{k}", None)
    return Split(split.train, split.test, split.cold, split.method, None, int((~train & ~test).sum()))
