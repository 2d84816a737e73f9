"""Train/test splits: chronological and leave-last-k, without leakage, with cold rows apart."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pytest

from features.io import SourceFormat
from features.split import Split, chronological_split, leave_last_k_split
from features.validate import validate

COLUMNS = ("user_id", "item_id", "timestamp", "event_type", "order_id")


def events_of(rows: Sequence[Sequence[str | None]]) -> pd.DataFrame:
    columns = COLUMNS[: len(rows[0])]
    table = pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)})
    result = validate(table, SourceFormat())
    assert result.report.rows_accepted == len(rows), result.report.rejected
    return result.events


def keys(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(user, item, YYYY-MM-DD) of each row, sorted."""
    return sorted(
        (str(u), str(i), t.strftime("%Y-%m-%d"))
        for u, i, t in zip(frame["user_id"], frame["item_id"], frame["timestamp"], strict=True)
    )


def assert_no_user_leakage(split: Split) -> None:
    """No train event of a user is at or after any of that user's test (warm or cold) events."""
    held = pd.concat([split.test, split.cold])
    first_test = held.groupby("user_id", observed=True)["timestamp"].min().to_dict()
    last_train = split.train.groupby("user_id", observed=True)["timestamp"].max().to_dict()
    for user, first in first_test.items():
        if user in last_train:
            assert last_train[user] < first, user


# --- chronological -------------------------------------------------------------------------------

CHRONO = [
    ("u1", "a", "2024-01-01", "purchase"),
    ("u2", "b", "2024-01-02", "purchase"),
    ("u1", "c", "2024-01-03", "purchase"),
    ("u1", "a", "2024-01-04", "view"),  # exactly at the cutoff: test
    ("u2", "a", "2024-01-05", "purchase"),
    ("u3", "a", "2024-01-05", "purchase"),  # user unseen in train: cold
    ("u1", "d", "2024-01-06", "purchase"),  # item unseen in train: cold
]


def test_chronological_split_by_date_trains_strictly_before_and_tests_at_or_after_the_cutoff():
    split = chronological_split(events_of(CHRONO), cutoff="2024-01-04")

    cutoff = pd.Timestamp("2024-01-04", tz="UTC")
    assert split.cutoff == cutoff
    assert (split.train["timestamp"] < cutoff).all()
    assert (split.test["timestamp"] >= cutoff).all()
    assert (split.cold["timestamp"] >= cutoff).all()
    assert keys(split.train) == [
        ("u1", "a", "2024-01-01"),
        ("u1", "c", "2024-01-03"),
        ("u2", "b", "2024-01-02"),
    ]
    assert keys(split.test) == [("u1", "a", "2024-01-04"), ("u2", "a", "2024-01-05")]


def test_test_rows_with_a_user_or_item_unseen_in_train_go_to_cold_and_are_counted():
    split = chronological_split(events_of(CHRONO), cutoff="2024-01-04")

    assert keys(split.cold) == [("u1", "d", "2024-01-06"), ("u3", "a", "2024-01-05")]
    assert split.report() == {
        "method": "chronological",
        "cutoff": "2024-01-04T00:00:00+00:00",
        "train_rows": 3,
        "test_rows": 2,
        "cold_rows": 2,
        "dropped_rows": 0,
        "train_users": 2,
        "train_items": 3,
        "test_users": 3,
        "test_users_unseen": 1,
        "test_items_unseen": 1,
    }


def test_cutoff_with_an_offset_is_converted_to_utc():
    split = chronological_split(events_of(CHRONO), cutoff="2024-01-04T01:00:00+01:00")

    assert split.cutoff == pd.Timestamp("2024-01-04", tz="UTC")
    assert len(split.train) == 3


def test_cutoff_accepts_a_timestamp_and_a_time_of_day():
    events = events_of(CHRONO)

    split = chronological_split(events, cutoff=pd.Timestamp("2024-01-04 00:00:01"))

    assert len(split.train) == 4  # the view at 00:00:00 is now before the cutoff
    assert split.cutoff == pd.Timestamp("2024-01-04 00:00:01", tz="UTC")


def test_chronological_split_by_fraction_holds_out_the_latest_share_of_events():
    rows = [(f"u{i % 3}", f"i{i % 4}", f"2024-01-{i + 1:02d}", "purchase") for i in range(10)]

    split = chronological_split(events_of(rows), test_fraction=0.3)

    held = pd.concat([split.test, split.cold])
    assert len(split.train) == 7
    assert len(held) == 3
    assert sorted(held["timestamp"].dt.day) == [8, 9, 10]
    assert split.cutoff is not None
    assert (split.train["timestamp"] < split.cutoff).all()
    assert (held["timestamp"] >= split.cutoff).all()


def test_rows_sharing_the_cutoff_time_all_go_to_test():
    rows = [
        ("u1", "a", "2024-01-01", "purchase"),
        ("u1", "b", "2024-01-02", "purchase"),
        ("u1", "c", "2024-01-02", "purchase"),
        ("u1", "d", "2024-01-02", "purchase"),
    ]

    split = chronological_split(events_of(rows), test_fraction=0.25)

    assert len(split.train) == 1
    assert len(split.test) + len(split.cold) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"test_fraction": 0.0},
        {"test_fraction": 1.0},
        {"test_fraction": -0.2},
        {"test_fraction": 1.5},
        {"cutoff": "2023-12-31"},  # everything is test
        {"cutoff": "2024-02-01"},  # everything is train
    ],
    ids=[
        "nothing",
        "fraction_0",
        "fraction_1",
        "fraction_negative",
        "fraction_above_1",
        "too_early",
        "too_late",
    ],
)
def test_chronological_split_with_bad_arguments_raises_value_error(kwargs: dict[str, object]):
    with pytest.raises(ValueError):
        chronological_split(events_of(CHRONO), **kwargs)  # type: ignore[arg-type]


# --- leave last k --------------------------------------------------------------------------------

VISITS = [
    ("u1", "x", "2024-01-01 10:00", "view", None),
    ("u1", "a", "2024-01-02 10:00", "purchase", "O1"),
    ("u1", "b", "2024-01-02 10:00", "purchase", "O1"),
    ("u1", "a", "2024-01-05 10:00", "purchase", "O2"),
    ("u1", "c", "2024-01-05 10:00", "purchase", "O2"),
    ("u1", "a", "2024-01-09 10:00", "view", None),
    ("u1", "b", "2024-01-10 10:00", "purchase", "O3"),
    ("u1", "d", "2024-01-10 10:00", "purchase", "O3"),
    ("u1", "b", "2024-01-11 10:00", "view", None),
    ("u2", "a", "2024-01-03 10:00", "purchase", "O4"),
    ("u2", "c", "2024-01-12 10:00", "view", None),
    ("u3", "e", "2024-01-04 10:00", "purchase", "O5"),
    ("u3", "e", "2024-01-06 10:00", "purchase", "O6"),
]


def test_leave_last_one_holds_out_each_users_whole_last_order():
    split = leave_last_k_split(events_of(VISITS), k=1)

    assert keys(split.test) == [("u1", "b", "2024-01-10"), ("u3", "e", "2024-01-06")]
    assert keys(split.cold) == [("u1", "d", "2024-01-10")]  # d is never in train
    assert split.method == "leave_last_1"
    assert split.cutoff is None


def test_leave_last_one_drops_and_counts_a_held_out_users_later_non_purchase_events():
    split = leave_last_k_split(events_of(VISITS), k=1)

    assert split.dropped_rows == 1  # u1's view of b after the last order
    assert len(split.train) == 9
    assert len(split.train) + len(split.test) + len(split.cold) + split.dropped_rows == len(VISITS)
    assert split.report()["dropped_rows"] == 1
    assert split.report()["cold_rows"] == 1
    assert split.report()["test_items_unseen"] == 1


def test_users_with_at_most_k_visits_stay_fully_in_train():
    split = leave_last_k_split(events_of(VISITS), k=1)

    u2_train = keys(split.train[split.train["user_id"] == "u2"])
    assert u2_train == [("u2", "a", "2024-01-03"), ("u2", "c", "2024-01-12")]
    assert "u2" not in set(pd.concat([split.test, split.cold])["user_id"])


def test_leave_last_two_holds_out_the_last_two_visits():
    split = leave_last_k_split(events_of(VISITS), k=2)

    assert keys(split.test) == [
        ("u1", "a", "2024-01-05"),
        ("u1", "b", "2024-01-10"),
        ("u1", "c", "2024-01-05"),
    ]
    assert keys(split.cold) == [("u1", "d", "2024-01-10")]
    assert split.dropped_rows == 2  # u1's views on the 9th and the 11th
    assert len(split.train) == 7  # u1's first view and order, all of u2 and u3 (<= 2 visits)
    assert split.method == "leave_last_2"


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("event_type", ["purchase", None])
def test_no_train_event_of_a_user_is_at_or_after_any_of_their_test_events(k: int, event_type: str | None):
    split = leave_last_k_split(events_of(VISITS), k=k, event_type=event_type)

    assert_no_user_leakage(split)
    assert len(split.train) + len(split.test) + len(split.cold) + split.dropped_rows == len(VISITS)


def test_leave_last_with_all_event_types_counts_views_as_visits():
    split = leave_last_k_split(events_of(VISITS), k=1, event_type=None)

    assert keys(split.test) == [
        ("u1", "b", "2024-01-11"),
        ("u2", "c", "2024-01-12"),
        ("u3", "e", "2024-01-06"),
    ]
    assert len(split.cold) == 0
    assert split.dropped_rows == 0
    assert len(split.train) == 10


def test_a_non_purchase_event_at_exactly_the_first_test_time_is_dropped():
    rows = [
        ("u1", "a", "2024-01-01 10:00", "purchase", "O1"),
        ("u1", "b", "2024-01-02 10:00", "purchase", "O2"),
        ("u1", "c", "2024-01-02 10:00", "view", None),
    ]

    split = leave_last_k_split(events_of(rows), k=1)

    assert keys(split.train) == [("u1", "a", "2024-01-01")]
    assert keys(split.cold) == [("u1", "b", "2024-01-02")]
    assert split.dropped_rows == 1


@pytest.mark.parametrize("k", [0, -1])
def test_leave_last_k_below_one_raises_value_error(k: int):
    with pytest.raises(ValueError, match="k must be >= 1"):
        leave_last_k_split(events_of(VISITS), k=k)
