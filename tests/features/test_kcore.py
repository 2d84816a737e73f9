"""k-core filtering: iterate until every user and item has enough distinct partners."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from features.io import SourceFormat
from features.kcore import kcore
from features.validate import validate


def events_of(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    table = pa.table(
        {
            "user_id": [u for u, _ in pairs],
            "item_id": [i for _, i in pairs],
            "timestamp": [f"2024-01-01 00:{n:02d}" for n in range(len(pairs))],
        }
    )
    return validate(table, SourceFormat(event_type="view")).events


def pairs_of(events: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(events["user_id"].astype(str), events["item_id"].astype(str), strict=True))


#: u1 and u2 each bought a and b; u3 bought b and c; u4 bought only c (twice).
#: With min 2 / 2: round 1 drops u4 -> c has one user left; round 2 drops u3-c -> u3 has one
#: item left; round 3 drops u3-b. A single pass would wrongly keep u3.
CHAIN = [
    ("u1", "a"),
    ("u1", "b"),
    ("u2", "a"),
    ("u2", "b"),
    ("u3", "b"),
    ("u3", "c"),
    ("u4", "c"),
    ("u4", "c"),
]


def test_kcore_iterates_until_every_user_and_item_has_enough_partners():
    kept = kcore(events_of(CHAIN), min_user=2, min_item=2)

    assert pairs_of(kept) == [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")]


def test_repeated_events_of_one_pair_count_as_one_partner():
    # u4 has two events but one distinct item, so it is below min_user=2
    kept = kcore(events_of(CHAIN), min_user=2, min_item=1)

    assert set(kept["user_id"].astype(str)) == {"u1", "u2", "u3"}
    assert len(kept) == 6


def test_kcore_keeps_every_event_of_surviving_pairs():
    events = events_of([("u1", "a"), ("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")])

    kept = kcore(events, min_user=2, min_item=2)

    assert len(kept) == 5
    assert kept.index.tolist() == events.index.tolist()


def test_kcore_by_item_only():
    kept = kcore(events_of(CHAIN), min_user=1, min_item=3)

    # b has three users (u1, u2, u3); a and c have two
    assert pairs_of(kept) == [("u1", "b"), ("u2", "b"), ("u3", "b")]


def test_kcore_with_minimum_one_is_a_no_op():
    events = events_of(CHAIN)

    kept = kcore(events, min_user=1, min_item=1)

    assert kept is events
    assert kcore(events) is events


def test_kcore_can_remove_everything():
    kept = kcore(events_of(CHAIN), min_user=5, min_item=1)

    assert kept.empty
    assert list(kept.columns) == list(events_of(CHAIN).columns)


def test_kcore_of_no_events_is_empty():
    events = events_of(CHAIN).iloc[:0]

    assert kcore(events, min_user=2, min_item=2).empty
