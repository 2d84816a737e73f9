"""Trending: per-day purchase and cart counts, and each item's growth against its own past."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.ids import IdIndex
from features.trending import DAY_NS, daily_counts, trend_scores

ITEMS = IdIndex(np.array(["a", "b", "c"]))


def _events(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item_id", "event_type", "timestamp"])
    frame["item_id"] = frame["item_id"].astype("category")
    frame["event_type"] = pd.Categorical(frame["event_type"], categories=["view", "cart", "purchase"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def test_daily_counts_weigh_purchases_one_carts_half_and_views_nothing() -> None:
    events = _events([
        ("a", "purchase", "2026-03-10 10:00"), ("a", "cart", "2026-03-10 11:00"),
        ("b", "view", "2026-03-10 12:00"), ("c", "purchase", "2026-03-09 23:59"),
    ])  # fmt: skip
    found = daily_counts(events, ITEMS, days=3)
    assert found.last_day == pd.Timestamp("2026-03-10").value // DAY_NS
    assert found.counts.toarray().tolist() == [[0, 0, 1.5], [0, 0, 0], [0, 1, 0]]


def test_an_item_growing_against_its_own_past_trends_and_a_steady_seller_does_not() -> None:
    days = 35
    counts = np.zeros((3, days))
    counts[0, :] = 3.0  # steady: 3 a day, every day
    counts[1, -7:] = 2.0  # new and rising: 14 in the last week, none before
    counts[2, -1] = 1.0  # one sale: not a trend yet
    score, recent, baseline = trend_scores(counts, days - 1, window=7, baseline=28)
    assert np.isneginf(score[0]) and np.isneginf(score[2])
    assert recent[1] == 14 and baseline[1] == 0
    assert score[1] == pytest.approx(np.log(16 / 2))
    assert recent[0] == 21 and baseline[0] == pytest.approx(21)
