"""Buy-again lists: each customer's past items scored by how often bought and how due, by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from features.ids import IdIndex
from features.io import resolve_format
from features.reorder import ReorderHistory, ReorderParams, reorder_history
from features.validate import load_events

# u1 buys a every 10 days and b once; u2 buys b twice 30 days apart (b's typical interval: 30 days).
EVENTS = """user_id,item_id,timestamp,event_type,order_id,quantity,price
u1,a,1970-01-01T10:00:00Z,purchase,o1,1,2
u1,a,1970-01-11T10:00:00Z,purchase,o2,1,2
u1,a,1970-01-11T10:00:00Z,purchase,o2,2,2
u1,a,1970-01-21T10:00:00Z,purchase,o3,1,2
u1,b,1970-01-06T10:00:00Z,purchase,o4,1,5
u2,b,1970-01-01T10:00:00Z,purchase,,1,5
u2,b,1970-01-31T10:00:00Z,purchase,,1,5
u2,a,1970-01-31T10:00:00Z,view,,,
"""


@pytest.fixture
def history(tmp_path: Path) -> tuple[ReorderHistory, IdIndex, IdIndex]:
    (tmp_path / "events.csv").write_text(EVENTS)
    events = load_events(tmp_path / "events.csv", resolve_format()).events
    users, items = IdIndex.from_values(["u1", "u2"]), IdIndex.from_values(["a", "b"])
    return reorder_history(events, users, items), users, items


def test_orders_days_and_intervals_are_counted_per_customer_and_item(
    history: tuple[ReorderHistory, IdIndex, IdIndex],
) -> None:
    found, _, _ = history
    assert found.orders.toarray().tolist() == [[3.0, 1.0], [0.0, 2.0]]  # o2's two lines are one order
    assert found.first_day.tolist() == [0, 5, 0] and found.last_day.tolist() == [20, 5, 30]
    assert found.item_interval.tolist() == [10.0, 30.0]
    assert found.newest_day == 30


def test_the_item_due_mid_horizon_ranks_first_and_a_one_off_borrows_the_items_interval(
    history: tuple[ReorderHistory, IdIndex, IdIndex],
) -> None:
    found, _, _ = history
    params = ReorderParams(frequency=1.0, tolerance=1.0)
    position, items, scores, interval = found.due(np.array([0]), today=25, horizon=10, params=params)
    assert position.tolist() == [0, 0] and items.tolist() == [0, 1]
    assert interval.tolist() == [10.0, 30.0]  # a: its own (20 - 0) / 2; b: the item's typical 30
    # a: elapsed 25 + 5 - 20 = 10 = its interval, so due-ness 1 and the score its 3 orders;
    # b: elapsed 25 + 5 - 5 = 25 of 30 days, one order.
    assert scores[0] == pytest.approx(3.0)
    assert scores[1] == pytest.approx(math.exp(-(math.log(25 / 30) ** 2) / 2))
    _, _, later, _ = found.due(np.array([0]), today=55, horizon=10, params=params)
    assert later[0] < scores[0]  # long overdue: less likely to be bought again


def test_the_history_round_trips_through_its_file(
    history: tuple[ReorderHistory, IdIndex, IdIndex], tmp_path: Path
) -> None:
    found, _, _ = history
    found.save(tmp_path / "reorder.npz")
    back = ReorderHistory.load(tmp_path / "reorder.npz", (2, 2))
    assert (back.orders != found.orders).nnz == 0 and back.last_day.tolist() == found.last_day.tolist()
    assert back.shop_interval == found.shop_interval and back.newest_day == 30
    with pytest.raises(ValueError, match="do not fit"):
        ReorderHistory.load(tmp_path / "reorder.npz", (2, 3))
