"""k-core filtering: keep users and items with at least a minimum number of distinct partners."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

__all__ = ["kcore"]

logger = logging.getLogger(__name__)


def kcore(events: pd.DataFrame, min_user: int = 1, min_item: int = 1, max_rounds: int = 100) -> pd.DataFrame:
    """Drop events until users have ``min_user`` distinct items and items ``min_item`` users."""
    if min_user <= 1 and min_item <= 1:
        return events
    if events.empty:
        return events
    u = events["user_id"].cat.codes.to_numpy().astype(np.int64)
    i = events["item_id"].cat.codes.to_numpy().astype(np.int64)
    n_users, n_items = int(u.max()) + 1, int(i.max()) + 1
    pairs = np.unique(u * n_items + i)
    pu, pi = pairs // n_items, pairs % n_items
    alive = np.ones(len(pairs), dtype=bool)
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        user_deg = np.bincount(pu[alive], minlength=n_users)
        item_deg = np.bincount(pi[alive], minlength=n_items)
        keep = alive & (user_deg[pu] >= min_user) & (item_deg[pi] >= min_item)
        if np.array_equal(keep, alive):
            break
        alive = keep
    logger.info("k-core(%d, %d) converged after %d rounds", min_user, min_item, rounds)
    good_users = np.zeros(n_users, dtype=bool)
    good_items = np.zeros(n_items, dtype=bool)
    good_users[pu[alive]] = True
    good_items[pi[alive]] = True
    return events[good_users[u] & good_items[i]]
