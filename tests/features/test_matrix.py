"""Weighted user x item matrices and item metadata, checked against hand-computed values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp

from features.dataset import load_catalog
from features.ids import IdIndex
from features.io import SourceFormat
from features.matrix import (
    Weighting,
    build_interactions,
    build_matrix,
    dismissed_pairs,
    event_confidence,
    item_metadata,
    rows_of,
)
from features.validate import validate

COLUMNS = ("user_id", "item_id", "timestamp", "event_type", "quantity", "price", "item_name", "category")


def events_of(rows: Sequence[Sequence[str | None]], fmt: SourceFormat | None = None) -> pd.DataFrame:
    """Validate hand-written raw rows into an events frame (every row must be accepted)."""
    columns = COLUMNS[: len(rows[0])]
    table = pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)})
    result = validate(table, fmt or SourceFormat())
    assert result.report.rows_accepted == len(rows), result.report.rejected
    return result.events


#: Two users, three items. With view 1, cart 4, purchase 10 and log2(1 + q):
#:   u1,a = 1 (view) + 4 (cart) = 5       u1,b = 10 * log2(1 + 3) = 20
#:   u2,a = 1 (view)                      u2,c = 10 + 10 = 20 (two purchases, summed)
HAND = [
    ("u1", "a", "2024-01-01", "view", "1"),
    ("u1", "a", "2024-01-11", "cart", "1"),
    ("u1", "b", "2024-01-21", "purchase", "3"),
    ("u2", "c", "2024-01-11", "purchase", "1"),
    ("u2", "a", "2024-01-21", "view", "1"),
    ("u2", "c", "2024-01-01", "purchase", "1"),
]


@pytest.fixture
def hand() -> pd.DataFrame:
    return events_of(HAND)


def dense(events: pd.DataFrame, weighting: Weighting | None = None) -> np.ndarray:
    users = IdIndex(np.array(["u1", "u2"]))
    items = IdIndex(np.array(["a", "b", "c"]))
    return build_matrix(events, users, items, weighting).toarray()


# --- confidence per event ------------------------------------------------------------------------


def test_default_weights_are_view_1_cart_4_purchase_10_with_log2_quantity(hand: pd.DataFrame):
    conf = event_confidence(hand, Weighting())

    np.testing.assert_allclose(conf, [1.0, 4.0, 20.0, 10.0, 1.0, 10.0])
    assert conf.dtype == np.float64


@pytest.mark.parametrize(
    ("quantity", "factor"), [("1", 1.0), ("3", 2.0), ("7", 3.0), ("0.5", math.log2(1.5))]
)
def test_log_quantity_scale_is_log2_of_one_plus_quantity(quantity: str, factor: float):
    events = events_of([("u1", "a", "2024-01-01", "purchase", quantity)])

    np.testing.assert_allclose(event_confidence(events, Weighting()), [10.0 * factor])


def test_linear_quantity_scale_multiplies_by_quantity(hand: pd.DataFrame):
    conf = event_confidence(hand, Weighting(quantity_scale="linear"))

    np.testing.assert_allclose(conf, [1.0, 4.0, 30.0, 10.0, 1.0, 10.0])


def test_no_quantity_scale_ignores_quantity(hand: pd.DataFrame):
    conf = event_confidence(hand, Weighting(quantity_scale="none"))

    np.testing.assert_allclose(conf, [1.0, 4.0, 10.0, 10.0, 1.0, 10.0])


def test_custom_weights_replace_defaults_and_unnamed_types_weigh_nothing(hand: pd.DataFrame):
    conf = event_confidence(hand, Weighting(weights={"purchase": 1.0, "cart": 2.5}))

    np.testing.assert_allclose(conf, [0.0, 2.5, 2.0, 1.0, 0.0, 1.0])


def test_half_life_decay_halves_per_half_life_before_the_latest_event(hand: pd.DataFrame):
    conf = event_confidence(hand, Weighting(half_life_days=10.0))

    # ages from 2024-01-21: 20, 10, 0, 10, 0, 20 days -> factors 1/4, 1/2, 1, 1/2, 1, 1/4
    np.testing.assert_allclose(conf, [0.25, 2.0, 20.0, 5.0, 1.0, 2.5])


def test_half_life_decay_is_relative_to_a_given_reference_time(hand: pd.DataFrame):
    weighting = Weighting(half_life_days=10.0, reference_time=pd.Timestamp("2024-01-31", tz="UTC"))

    np.testing.assert_allclose(event_confidence(hand, weighting), [0.125, 1.0, 10.0, 2.5, 0.5, 1.25])


def test_events_after_the_reference_time_are_not_boosted_above_full_weight(hand: pd.DataFrame):
    weighting = Weighting(half_life_days=10.0, reference_time=pd.Timestamp("2024-01-11", tz="UTC"))

    np.testing.assert_allclose(event_confidence(hand, weighting), [0.5, 4.0, 20.0, 10.0, 1.0, 5.0])


def test_fractional_ages_decay_continuously():
    events = events_of(
        [("u1", "a", "2024-01-01 00:00", "view", "1"), ("u1", "b", "2024-01-02 12:00", "view", "1")]
    )

    conf = event_confidence(events, Weighting(half_life_days=3.0))

    np.testing.assert_allclose(conf, [0.5**0.5, 1.0])


# --- the matrix ----------------------------------------------------------------------------------


def test_matrix_equals_a_hand_built_sparse_matrix_with_duplicates_summed(hand: pd.DataFrame):
    users = IdIndex(np.array(["u1", "u2"]))
    items = IdIndex(np.array(["a", "b", "c"]))

    matrix = build_matrix(hand, users, items)

    expected = sp.csr_matrix(
        (np.array([5.0, 20.0, 1.0, 20.0]), (np.array([0, 0, 1, 1]), np.array([0, 1, 0, 2]))), shape=(2, 3)
    )
    assert sp.issparse(matrix) and matrix.format == "csr"
    assert matrix.dtype == np.float32
    assert matrix.shape == (2, 3)
    assert matrix.nnz == 4
    assert (matrix != expected).nnz == 0
    np.testing.assert_array_equal(matrix.toarray(), [[5, 20, 0], [1, 0, 20]])


def test_matrix_with_decay_matches_the_hand_computed_sums(hand: pd.DataFrame):
    np.testing.assert_allclose(dense(hand, Weighting(half_life_days=10.0)), [[2.25, 20, 0], [1, 0, 7.5]])


def test_matrix_with_linear_and_none_quantity_scales(hand: pd.DataFrame):
    np.testing.assert_allclose(dense(hand, Weighting(quantity_scale="linear")), [[5, 30, 0], [1, 0, 20]])
    np.testing.assert_allclose(dense(hand, Weighting(quantity_scale="none")), [[5, 10, 0], [1, 0, 20]])


def test_zero_weight_cells_are_not_stored(hand: pd.DataFrame):
    users = IdIndex(np.array(["u1", "u2"]))
    items = IdIndex(np.array(["a", "b", "c"]))

    matrix = build_matrix(hand, users, items, Weighting(weights={"purchase": 1.0}))

    assert matrix.nnz == 2
    np.testing.assert_array_equal(matrix.toarray(), [[0, 2, 0], [0, 0, 2]])


def test_purchase_netted_to_zero_quantity_adds_nothing():
    table = pa.table(
        {
            "user_id": ["u1", "u1", "u1"],
            "item_id": ["a", "a", "b"],
            "timestamp": ["2024-01-01", "2024-01-02", "2024-01-01"],
            "order_id": ["O1", "C1", "O1"],
            "quantity": ["2", "-2", "1"],
        }
    )
    events = validate(table, SourceFormat(event_type="purchase", cancel_prefix="C")).events

    interactions = build_interactions(events)

    assert list(interactions.items.ids) == ["a", "b"]
    np.testing.assert_array_equal(interactions.matrix.toarray(), [[0, 10]])
    assert interactions.matrix.nnz == 1


def test_events_of_users_or_items_outside_the_indexes_are_dropped(hand: pd.DataFrame):
    users = IdIndex(np.array(["u1"]))
    items = IdIndex(np.array(["a", "b", "c", "z"]))

    matrix = build_matrix(hand, users, items)

    assert matrix.shape == (1, 4)
    np.testing.assert_array_equal(matrix.toarray(), [[5, 20, 0, 0]])


def test_rows_of_maps_categorical_ids_to_index_rows_with_minus_one_for_unknown(hand: pd.DataFrame):
    items = IdIndex(np.array(["b", "c"]))

    np.testing.assert_array_equal(rows_of(hand["item_id"], items), [-1, -1, 0, 1, -1, 1])


def test_build_interactions_indexes_sorted_ids_and_reports_density(hand: pd.DataFrame):
    interactions = build_interactions(hand, Weighting(quantity_scale="none"))

    assert list(interactions.users.ids) == ["u1", "u2"]
    assert list(interactions.items.ids) == ["a", "b", "c"]
    np.testing.assert_array_equal(interactions.matrix.toarray(), [[5, 10, 0], [1, 0, 20]])
    assert interactions.density == pytest.approx(4 / 6)
    assert list(interactions.item_meta["item_id"]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": {"like": 1.0}}, "like"),
        ({"weights": {"view": -1.0}}, ">= 0"),
        ({"half_life_days": 0.0}, "half_life_days"),
        ({"half_life_days": -3.0}, "half_life_days"),
        ({"quantity_scale": "sqrt"}, "sqrt"),
    ],
    ids=["unknown_type", "negative_weight", "zero_half_life", "negative_half_life", "bad_scale"],
)
def test_bad_weighting_arguments_raise_value_error(kwargs: dict[str, object], message: str):
    with pytest.raises(ValueError, match=message):
        Weighting(**kwargs)  # type: ignore[arg-type]


def test_zero_weights_are_allowed():
    assert Weighting(weights={"view": 0.0}).weights == {"view": 0.0}


# --- item metadata -------------------------------------------------------------------------------

META_ROWS = [
    ("u1", "a", "2024-01-01", "purchase", "1", "2.0", "Mug", None),
    ("u2", "a", "2024-01-02", "purchase", "1", "4.0", "Mug", None),
    ("u3", "a", "2024-01-03", "purchase", "1", "10.0", "MUG", None),
    ("u1", "b", "2024-01-01", "purchase", "1", "1.0", "Plate", "Tableware"),
    ("u1", "c", "2024-01-04", "view", None, None, None, None),
    ("u2", "d", "2024-01-05", "purchase", "1", "3.0", None, "Garden"),
]

CATALOG = "item_id,name,category,price,in_stock\nb,Big plate,Kitchen,1.5,yes\nd,,,,no\nzz,Ghost,Other,9,yes\n"


def test_item_metadata_from_events_median_price_most_frequent_name_and_defaults():
    events = events_of(META_ROWS)
    items = IdIndex(np.array(["a", "b", "c", "d"]))

    meta = item_metadata(events, items)

    assert list(meta.columns) == ["item_id", "price", "name", "category", "cost", "in_stock"]
    assert meta["cost"].isna().all()  # only a catalog knows costs
    assert meta["item_id"].tolist() == ["a", "b", "c", "d"]
    assert meta["price"].tolist()[:2] == [4.0, 1.0]
    assert np.isnan(meta["price"].iloc[2])
    assert meta["price"].iloc[3] == 3.0
    assert meta["name"].tolist() == ["Mug", "Plate", "c", "d"]  # no name: the id
    assert meta["category"].tolist() == ["", "Tableware", "", "Garden"]
    assert meta["in_stock"].tolist() == [True, True, True, True]
    assert meta["price"].dtype == np.float64
    assert meta["in_stock"].dtype == bool


def test_catalog_values_win_over_events_and_blank_catalog_cells_keep_event_values(tmp_path: Path):
    path = tmp_path / "items.csv"
    path.write_text(CATALOG)
    events = events_of(META_ROWS)
    items = IdIndex(np.array(["a", "b", "c", "d"]))

    meta = item_metadata(events, items, load_catalog(path))

    assert meta["name"].tolist() == ["Mug", "Big plate", "c", "d"]
    assert meta["category"].tolist() == ["", "Kitchen", "", "Garden"]
    assert meta["price"].tolist()[:2] == [4.0, 1.5]
    assert meta["price"].iloc[3] == 3.0
    assert meta["in_stock"].tolist() == [True, True, True, False]
    assert len(meta) == 4  # catalog-only item zz is not added


def test_item_metadata_rows_follow_the_index_not_the_events(hand: pd.DataFrame):
    items = IdIndex(np.array(["c", "x"]))

    meta = item_metadata(hand, items)

    assert meta["item_id"].tolist() == ["c", "x"]
    assert meta["name"].tolist() == ["c", "x"]
    assert meta["price"].isna().all()


def test_build_interactions_attaches_catalog_metadata(tmp_path: Path):
    path = tmp_path / "items.csv"
    path.write_text(CATALOG)

    interactions = build_interactions(events_of(META_ROWS), catalog=load_catalog(path))

    assert interactions.item_meta.loc[1, "name"] == "Big plate"
    assert not interactions.item_meta.loc[3, "in_stock"]


def test_load_catalog_parses_price_and_in_stock_flags_and_keeps_the_last_duplicate(tmp_path: Path):
    path = tmp_path / "items.csv"
    path.write_text(
        "item_id,name,price,in_stock\n"
        "a,Mug,1.5,yes\n"
        "b,Plate,,no\n"
        "c,,abc,1\n"
        "d,Bowl,2,0\n"
        "e,Cup,3,TRUE\n"
        "f,Jug,4,\n"
        "g,Pan,5,sold out\n"
        ",Orphan,6,yes\n"
        "a,Mug v2,1.75,false\n"
    )

    catalog = load_catalog(path)

    assert catalog["item_id"].tolist() == ["b", "c", "d", "e", "f", "g", "a"]
    assert catalog["name"].isna().tolist() == [False, True, False, False, False, False, False]
    assert catalog["name"].dropna().tolist() == ["Plate", "Bowl", "Cup", "Jug", "Pan", "Mug v2"]
    prices = catalog["price"].tolist()
    assert np.isnan(prices[0]) and np.isnan(prices[1])
    assert prices[2:] == [2.0, 3.0, 4.0, 5.0, 1.75]
    assert catalog["in_stock"].tolist() == [False, True, False, True, True, False, False]


#: u1 views then dismisses a; u2 dismisses b, then buys it (a change of mind); u3 buys c, then dismisses it.
DISMISSALS = [
    ("u1", "a", "2024-01-01", "view", "1"),
    ("u1", "a", "2024-01-02", "dismiss", "1"),
    ("u2", "b", "2024-01-01", "dismiss", "1"),
    ("u2", "b", "2024-01-03", "purchase", "1"),
    ("u3", "c", "2024-01-01", "purchase", "1"),
    ("u3", "c", "2024-01-05", "dismiss", "1"),
    ("u3", "a", "2024-01-05", "view", "1"),
]


def test_a_dismissal_newer_than_the_last_cart_or_purchase_takes_the_pair_out_of_training() -> None:
    events = events_of(DISMISSALS)
    users, items = IdIndex(np.array(["u1", "u2", "u3"])), IdIndex(np.array(["a", "b", "c"]))
    standing = dismissed_pairs(events, users, items).toarray()
    assert standing.tolist() == [[True, False, False], [False, False, False], [False, False, True]]
    excluded = build_matrix(events, users, items).toarray()
    assert excluded[0, 0] == 0 and excluded[2, 2] == 0 and excluded[1, 1] == 10 and excluded[2, 0] == 1
    kept = build_matrix(events, users, items, Weighting(dismissals="keep")).toarray()
    assert kept[0, 0] == 1 and kept[2, 2] == 10
