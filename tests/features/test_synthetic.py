"""Tests for the synthetic store generator: contract, determinism and the planted structure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.schema import EVENT_COLUMNS, ITEM_COLUMNS, EventType
from features.synthetic import CATEGORIES, SyntheticStore, generate_store, write_store

EVENT_ORDER = ["user_id", "item_id", "event_type", "timestamp", "order_id", "quantity", "price"]


@pytest.fixture(scope="module")
def store() -> SyntheticStore:
    return generate_store(users=300, items=120, days=30, seed=7)


@pytest.fixture(scope="module")
def purchases(store: SyntheticStore) -> pd.DataFrame:
    events = store.events
    return events[events["event_type"] == "purchase"]


def test_same_seed_gives_identical_frames_and_file_bytes(tmp_path: Path) -> None:
    first = generate_store(users=300, items=120, days=30, seed=3)
    second = generate_store(users=300, items=120, days=30, seed=3)
    pd.testing.assert_frame_equal(first.events, second.events)
    pd.testing.assert_frame_equal(first.items, second.items)
    np.testing.assert_array_equal(first.truth.complements, second.truth.complements)
    np.testing.assert_array_equal(first.truth.user_category, second.truth.user_category)
    paths_a = write_store(first, tmp_path / "a")
    paths_b = write_store(second, tmp_path / "b")
    for name in ("events", "items", "truth"):
        assert paths_a[name].read_bytes() == paths_b[name].read_bytes()


def test_different_seed_gives_different_data(store: SyntheticStore) -> None:
    other = generate_store(users=300, items=120, days=30, seed=8)
    assert not store.events.equals(other.events)
    assert not store.items["price"].equals(other.items["price"])
    assert not np.array_equal(store.truth.user_category, other.truth.user_category)


def test_events_follow_the_column_contract(store: SyntheticStore) -> None:
    events = store.events
    assert list(events.columns) == EVENT_ORDER
    assert set(events.columns) <= set(EVENT_COLUMNS)
    for column in ("user_id", "item_id", "event_type", "order_id"):
        assert pd.api.types.is_string_dtype(events[column]), column
    assert isinstance(events["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(events["timestamp"].dt.tz) == "UTC"
    assert pd.api.types.is_integer_dtype(events["quantity"])
    assert pd.api.types.is_float_dtype(events["price"])
    assert set(events["event_type"]) == {e.value for e in EventType} - {
        EventType.DISMISS.value
    }  # none planted
    assert events["user_id"].str.fullmatch(r"u\d{3}").all()
    assert events["item_id"].str.fullmatch(r"i\d{3}").all()
    assert events["timestamp"].is_monotonic_increasing
    assert events.index.equals(pd.RangeIndex(len(events)))


def test_events_reference_catalog_items_with_their_positive_prices(store: SyntheticStore) -> None:
    events, items = store.events, store.items
    assert events["item_id"].isin(items["item_id"]).all()
    assert events["user_id"].isin(store.truth.user_ids).all()
    assert (events["price"] > 0).all()
    catalog_price = events["item_id"].map(items.set_index("item_id")["price"])
    np.testing.assert_array_equal(events["price"].to_numpy(), catalog_price.to_numpy())
    assert (events["quantity"] >= 1).all()
    assert (events["quantity"] <= 5).all()
    assert (events["quantity"] == 1).mean() > 0.8


def test_timestamps_stay_inside_the_requested_window(store: SyntheticStore) -> None:
    stamps = store.events["timestamp"]
    assert stamps.min() >= pd.Timestamp("2026-01-01", tz="UTC")
    assert stamps.max() < pd.Timestamp("2026-01-31", tz="UTC")
    assert (stamps.dt.second != 0).any()


def test_catalog_has_readable_categories_and_log_normal_prices(store: SyntheticStore) -> None:
    items = store.items
    assert list(items.columns) == list(ITEM_COLUMNS)
    assert len(items) == 120
    assert items["item_id"].is_unique
    assert 10 <= items["category"].nunique() <= 20
    assert set(items["category"]) <= {c[0] for c in CATEGORIES}
    assert items["name"].str.fullmatch(r"[A-Z][A-Za-z -]+ \d+").all()
    assert (items["price"] > 0).all()
    assert (items["price"].round(2) == items["price"]).all()
    phones = items.loc[items["category"] == "phones", "price"].median()
    cases = items.loc[items["category"] == "phone_accessories", "price"].median()
    assert phones > 5 * cases
    assert items["in_stock"].dtype == bool
    assert 0.8 < items["in_stock"].mean() < 1.0


def test_funnel_narrows_from_views_to_carts_to_purchases(store: SyntheticStore) -> None:
    counts = store.events["event_type"].value_counts()
    assert counts["view"] > 2 * counts["cart"]
    assert counts["cart"] > counts["purchase"] > 0


def test_every_purchase_follows_a_view_and_a_cart_of_the_same_user_and_item(
    store: SyntheticStore, purchases: pd.DataFrame
) -> None:
    events = store.events
    key = ["user_id", "item_id"]
    for stage in ("view", "cart"):
        first_seen = events[events["event_type"] == stage].groupby(key)["timestamp"].min()
        joined = purchases.join(first_seen.rename("first_seen"), on=key)
        assert joined["first_seen"].notna().all(), stage
        assert (joined["first_seen"] <= joined["timestamp"]).all(), stage


def test_order_ids_appear_only_on_purchases(store: SyntheticStore) -> None:
    events = store.events
    is_purchase = events["event_type"] == "purchase"
    assert events.loc[is_purchase, "order_id"].notna().all()
    assert events.loc[~is_purchase, "order_id"].isna().all()
    assert events.loc[is_purchase, "order_id"].str.fullmatch(r"o\d+").all()


def test_orders_group_several_items_under_one_user_and_timestamp(purchases: pd.DataFrame) -> None:
    orders = purchases.groupby("order_id")
    assert (orders["user_id"].nunique() == 1).all()
    assert (orders["timestamp"].nunique() == 1).all()
    sizes = orders.size()
    assert (sizes >= 2).sum() > 10
    assert sizes.median() <= 6
    assert not purchases.duplicated(["order_id", "item_id"]).any()


def test_order_ids_are_numbered_in_time_order(purchases: pd.DataFrame) -> None:
    first_time = purchases.groupby("order_id")["timestamp"].first()
    assert first_time.is_monotonic_increasing
    assert first_time.index[0] == "o" + "1".zfill(len(first_time.index[0]) - 1)


def test_planted_complements_are_co_purchased_far_above_chance(
    store: SyntheticStore, purchases: pd.DataFrame
) -> None:
    complements = store.truth.complements
    assert complements.ndim == 2
    assert complements.shape[1] == 2
    assert 3 <= len(complements) <= 12  # ~5% of 120 items
    baskets = purchases.groupby("item_id")["order_id"].agg(set)
    n_orders = purchases["order_id"].nunique()
    with_anchor = with_both = 0
    base_rates = []
    for anchor, complement in complements:
        anchor_orders = baskets.get(anchor, set())
        complement_orders = baskets.get(complement, set())
        with_anchor += len(anchor_orders)
        with_both += len(anchor_orders & complement_orders)
        base_rates.append(len(complement_orders) / n_orders)
    assert with_anchor >= 20
    conditional = with_both / with_anchor
    assert 0.3 < conditional < 0.8
    assert conditional / np.mean(base_rates) > 5


def test_complements_live_in_the_companion_category(store: SyntheticStore) -> None:
    items = store.items
    ids = items["item_id"].tolist()
    category = dict(zip(ids, items["category"].tolist(), strict=True))
    name = dict(zip(ids, items["name"].tolist(), strict=True))
    in_stock = dict(zip(ids, items["in_stock"].tolist(), strict=True))
    companion = {c[0]: c[5] for c in CATEGORIES}
    for anchor, complement in store.truth.complements:
        assert companion[category[anchor]] == category[complement]
        assert name[anchor].split()[-1] == name[complement].split()[-1]  # "Phone 7", "Phone case 7"
        assert in_stock[anchor]
        assert in_stock[complement]


def test_users_mostly_view_and_buy_their_favourite_category(store: SyntheticStore) -> None:
    category = store.items.set_index("item_id")["category"]
    favourite = pd.Series(store.truth.user_category, index=store.truth.user_ids)
    for stage in ("view", "purchase"):
        rows = store.events[store.events["event_type"] == stage]
        hits = rows["item_id"].map(category).to_numpy() == rows["user_id"].map(favourite).to_numpy()
        assert hits.mean() > 0.5, stage
    second = store.truth.user_category2
    assert 0.3 < (second != "").mean() < 0.7
    assert not (second == store.truth.user_category).any()


def test_item_popularity_is_skewed_by_planted_rank(store: SyntheticStore) -> None:
    views = store.events.loc[store.events["event_type"] == "view", "item_id"].value_counts()
    rank = pd.Series(store.truth.item_rank, index=store.truth.item_ids)
    per_rank = views.reindex(rank.index, fill_value=0).groupby(rank).mean()
    assert per_rank.loc[1] > 3 * per_rank.loc[per_rank.index >= 5].mean()


def test_user_activity_is_heavy_tailed(store: SyntheticStore) -> None:
    per_user = store.events["user_id"].value_counts()
    top = per_user.head(len(store.truth.user_ids) // 10).sum()
    assert top / per_user.sum() > 0.25


def test_truth_uses_aligned_unicode_arrays(store: SyntheticStore) -> None:
    truth = store.truth
    for array in (truth.complements, truth.user_ids, truth.user_category, truth.item_ids):
        assert array.dtype.kind == "U"
    assert len(truth.user_ids) == len(truth.user_category) == len(truth.user_category2) == 300
    np.testing.assert_array_equal(truth.item_ids, store.items["item_id"].to_numpy(dtype=str))
    assert truth.item_rank.min() == 1


def test_events_per_user_scales_the_volume() -> None:
    small = generate_store(users=300, items=120, seed=5, events_per_user=10)
    large = generate_store(users=300, items=120, seed=5, events_per_user=40)
    assert 2.5 < len(large.events) / len(small.events) < 6


def test_default_store_has_a_realistic_volume() -> None:
    assert 150_000 <= len(generate_store().events) <= 400_000


def test_rejects_a_catalog_smaller_than_the_category_list() -> None:
    with pytest.raises(ValueError, match="items"):
        generate_store(items=5)


def test_write_store_writes_files_that_read_back(store: SyntheticStore, tmp_path: Path) -> None:
    paths = write_store(store, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"events.csv", "items.csv", "truth.json"}
    events = pd.read_csv(paths["events"])
    items = pd.read_csv(paths["items"])
    assert len(events) == len(store.events)
    assert len(items) == len(store.items)
    assert list(events.columns) == EVENT_ORDER
    assert events["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    parsed = pd.to_datetime(events["timestamp"], utc=True)
    np.testing.assert_array_equal(parsed.to_numpy(), store.events["timestamp"].to_numpy())
    assert events["order_id"].isna().sum() == store.events["order_id"].isna().sum()
    first_view = paths["events"].read_text().splitlines()[1]
    assert ",," in first_view  # empty order_id field on a view row
    truth = json.loads(paths["truth"].read_text())
    assert truth["complements"] == store.truth.complements.tolist()
    assert len(truth["user_category"]) == 300


def test_planted_dislikes_are_dismissals_of_each_chosen_users_favourite_best_sellers() -> None:
    plain = generate_store(users=400, items=120, days=30, seed=4)
    store = generate_store(users=400, items=120, days=30, seed=4, dislike_share=0.25)
    dismissals = store.events[store.events["event_type"] == EventType.DISMISS.value]
    assert len(store.events) == len(plain.events) + len(dismissals)  # nothing else changes
    pairs = set(zip(dismissals["user_id"], dismissals["item_id"], strict=True))
    assert pairs == {tuple(p) for p in store.truth.dislikes.tolist()} and 150 <= len(pairs) <= 250
    rank = dict(zip(store.truth.item_ids, store.truth.item_rank, strict=True))
    favourite = dict(zip(store.truth.user_ids, store.truth.user_category, strict=True))
    category = dict(zip(store.items["item_id"], store.items["category"], strict=True))
    assert all(rank[i] <= 2 and category[i] == favourite[u] for u, i in pairs)
    assert (dismissals["timestamp"] == store.events["timestamp"].max()).all()
