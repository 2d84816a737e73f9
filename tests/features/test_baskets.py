"""Order and session baskets as binary basket x item matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.baskets import order_baskets, session_baskets
from features.ids import IdIndex
from features.io import SourceFormat
from features.validate import validate

COLUMNS = ("user_id", "item_id", "timestamp", "event_type", "order_id", "quantity", "price")


def events_of(rows: Sequence[Sequence[str | None]], fmt: SourceFormat | None = None) -> pd.DataFrame:
    columns = COLUMNS[: len(rows[0])]
    table = pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)})
    return validate(table, fmt or SourceFormat()).events


def ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


USERS = IdIndex(np.array(["u1", "u2", "u3"]))
ITEMS = IdIndex(np.array(["a", "b", "c", "d", "e", "f"]))

ORDERS = [
    ("u1", "a", "2024-01-01 10:00", "purchase", "O1", "2", "1.5"),
    ("u1", "b", "2024-01-01 10:00", "purchase", "O1", "1", "4.0"),
    ("u1", "a", "2024-01-01 10:00", "purchase", "O1", "1", "1.5"),  # same item again: one cell
    ("u2", "c", "2024-01-02 11:00", "purchase", "O2", "3", "2.0"),
    ("u2", "d", "2024-01-02 11:00", "view", None, None, None),  # not a purchase
    ("u3", "e", "2024-01-03 09:00", "purchase", "O3", "2", "1.0"),
    ("u3", "e", "2024-01-04 09:00", "purchase", "C3", "-2", "1.0"),  # returns all of O3
    ("u1", "f", "2024-01-05 09:00", "purchase", None, "1", "1.0"),  # no order id
    ("u2", "a", "2024-01-06 09:00", "purchase", "O4", "1", None),  # no price: value 0
]


@pytest.fixture
def orders() -> pd.DataFrame:
    events = events_of(ORDERS, SourceFormat(cancel_prefix="C"))
    assert len(events) == 8
    return events


def test_order_baskets_group_purchases_by_order_id_into_distinct_binary_items(orders: pd.DataFrame):
    baskets = order_baskets(orders, USERS, ITEMS)

    assert len(baskets) == 3  # O1, O2, O4
    assert baskets.matrix.dtype == np.float32
    assert baskets.matrix.shape == (3, 6)
    np.testing.assert_array_equal(
        baskets.matrix.toarray(),
        [
            [1, 1, 0, 0, 0, 0],  # O1: a (twice), b
            [0, 0, 1, 0, 0, 0],  # O2: c
            [1, 0, 0, 0, 0, 0],  # O4: a
        ],
    )
    assert baskets.sizes.tolist() == [2, 1, 1]


def test_order_baskets_skip_non_purchases_zero_net_quantity_and_rows_without_order(orders: pd.DataFrame):
    baskets = order_baskets(orders, USERS, ITEMS)

    in_any_basket = np.flatnonzero(baskets.matrix.sum(axis=0).A1)
    assert ITEMS.to_ids(in_any_basket).tolist() == ["a", "b", "c"]  # not d (view), e (returned), f


def test_order_basket_value_is_the_sum_of_price_times_quantity(orders: pd.DataFrame):
    baskets = order_baskets(orders, USERS, ITEMS)

    np.testing.assert_allclose(baskets.value, [2 * 1.5 + 1 * 4.0 + 1 * 1.5, 3 * 2.0, 0.0])


def test_order_baskets_carry_the_user_and_first_event_time(orders: pd.DataFrame):
    baskets = order_baskets(orders, USERS, ITEMS)

    assert baskets.user_idx.tolist() == [0, 1, 1]
    assert baskets.user_idx.dtype == np.int32
    assert baskets.timestamp.tolist() == [
        ns("2024-01-01 10:00"),
        ns("2024-01-02 11:00"),
        ns("2024-01-06 09:00"),
    ]


def test_order_baskets_drop_items_outside_the_index(orders: pd.DataFrame):
    items = IdIndex(np.array(["b", "c"]))

    baskets = order_baskets(orders, USERS, items)

    np.testing.assert_array_equal(baskets.matrix.toarray(), [[1, 0], [0, 1]])
    np.testing.assert_allclose(baskets.value, [4.0, 6.0])  # only the indexed lines count


# --- anonymous orders ----------------------------------------------------------------------------

ANONYMOUS_ORDERS = [
    (None, "c", "2024-01-07 09:00", "purchase", "O1", "1", "2.0"),  # shares O1's id: its own basket
    (None, "d", "2024-01-07 09:00", "purchase", "O1", "2", "1.0"),
    (None, "z", "2024-01-08 09:00", "purchase", "O8", "1", "1.0"),  # z is not in the index
    (None, "e", "2024-01-09 09:00", "purchase", "O9", "1", "5.0"),
]


@pytest.fixture
def anonymous() -> pd.DataFrame:
    table = pa.table(
        {c: pa.array([r[i] for r in ANONYMOUS_ORDERS], pa.string()) for i, c in enumerate(COLUMNS)}
    )
    lines = validate(table, SourceFormat()).anonymous
    assert len(lines) == 4
    return lines


def test_anonymous_orders_follow_the_identified_ones_as_baskets_without_a_user(
    orders: pd.DataFrame, anonymous: pd.DataFrame
):
    baskets = order_baskets(orders, USERS, ITEMS, anonymous)

    assert len(baskets) == 3 + 2  # O1, O2, O4, then anonymous O1 and O9 (O8 has no indexed item)
    assert baskets.user_idx.tolist() == [0, 1, 1, -1, -1]
    assert baskets.user_idx.dtype == np.int32
    np.testing.assert_array_equal(baskets.matrix.toarray()[3:], [[0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 0]])
    np.testing.assert_allclose(baskets.value[3:], [1 * 2.0 + 2 * 1.0, 5.0])
    assert baskets.timestamp[3:].tolist() == [ns("2024-01-07 09:00"), ns("2024-01-09 09:00")]


def test_order_baskets_without_anonymous_lines_are_unchanged(orders: pd.DataFrame, anonymous: pd.DataFrame):
    plain = order_baskets(orders, USERS, ITEMS)

    for other in (
        order_baskets(orders, USERS, ITEMS, anonymous.iloc[:0]),
        order_baskets(orders, USERS, ITEMS, None),
    ):
        assert (other.matrix != plain.matrix).nnz == 0
        assert other.user_idx.tolist() == plain.user_idx.tolist()
        assert other.value.tolist() == plain.value.tolist()


# --- sessions ------------------------------------------------------------------------------------

BROWSING = [
    ("u1", "a", "2024-01-01 10:00", "view"),
    ("u2", "a", "2024-01-01 10:05", "view"),
    ("u1", "b", "2024-01-01 10:20", "cart"),
    ("u1", "a", "2024-01-01 10:50", "view"),  # 30 min after the cart: same session
    ("u1", "c", "2024-01-01 11:21", "purchase"),  # 31 min later: a new session
    ("u2", "b", "2024-01-01 10:40", "view"),  # 35 min after u2's first view: a new session
]


def test_session_baskets_split_on_a_gap_longer_than_30_minutes_and_on_user_change():
    baskets = session_baskets(events_of(BROWSING), USERS, ITEMS)

    assert len(baskets) == 4
    assert baskets.user_idx.tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(
        baskets.matrix.toarray()[:, :3],
        [[1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0]],
    )
    assert baskets.timestamp.tolist() == [
        ns("2024-01-01 10:00"),
        ns("2024-01-01 11:21"),
        ns("2024-01-01 10:05"),
        ns("2024-01-01 10:40"),
    ]
    assert baskets.value.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_session_baskets_never_join_two_users_even_within_the_gap():
    baskets = session_baskets(events_of(BROWSING), USERS, ITEMS, gap_minutes=60)

    assert len(baskets) == 2
    assert baskets.user_idx.tolist() == [0, 1]
    assert baskets.sizes.tolist() == [3, 2]


def test_session_baskets_can_be_limited_to_some_event_types():
    baskets = session_baskets(events_of(BROWSING), USERS, ITEMS, event_types=("view",))

    # u1's views at 10:00 and 10:50 are 50 minutes apart once the cart is left out
    assert len(baskets) == 4
    assert baskets.user_idx.tolist() == [0, 0, 1, 1]
    assert baskets.sizes.tolist() == [1, 1, 1, 1]
