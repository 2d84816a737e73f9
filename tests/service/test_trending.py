"""Trending items over HTTP: a planted rising item tops the list, live events move it, cold start uses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.dataset import load_dataset
from features.io import resolve_format
from features.synthetic import generate_store, write_store
from service.app import create_app
from service.config import Settings
from training.job import TrainConfig, run_training


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Return an artifact of a store where one rarely bought item sells fast in its last five days."""
    root = tmp_path_factory.mktemp("trend")
    store = generate_store(users=600, items=120, days=60, seed=3)
    events = store.events
    bought = events[events["event_type"] == "purchase"]["item_id"].value_counts()
    rising = str(bought.index[-1])  # the least bought item that sold at all
    category = str(store.items.set_index("item_id").loc[rising, "category"])
    end = events["timestamp"].max()
    rows = [
        {"user_id": f"u{k:03d}", "item_id": rising, "event_type": "purchase",
         "timestamp": end - pd.Timedelta(hours=2 + 5 * k), "order_id": f"p{k}", "quantity": 1, "price": 10.0}
        for k in range(1, 21)
    ]  # fmt: skip
    store = type(store)(pd.concat([events, pd.DataFrame(rows)], ignore_index=True), store.items, store.truth)
    write_store(store, root / "store")
    dataset = load_dataset(root / "store/events.csv", resolve_format(), root / "store/items.csv")
    run_training(dataset, TrainConfig(model="popular", holdout=None), root / "artifact", {"fingerprint": "t"})
    return root / "artifact", rising, category


@pytest.fixture
def shop(planted: tuple[Path, str, str], tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(model_uri=str(planted[0]), event_log=tmp_path / "e.jsonl", trending_refresh_s=0)
    with TestClient(create_app(settings)) as client:
        yield client


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_the_planted_rising_item_tops_the_trending_list_and_its_category(
    shop: TestClient, planted: tuple[Path, str, str]
) -> None:
    _, rising, category = planted
    body = shop.get("/v1/trending", params={"n": 5}).json()
    assert body["source"] == "trending" and body["window_days"] == 7
    assert _ids(body)[0] == rising
    top = body["items"][0]
    assert top["recent"] == 20 and top["trend_score"] > 0 and top["baseline"] < top["recent"]
    in_category = shop.get("/v1/trending", params={"n": 5, "category": category}).json()
    assert _ids(in_category)[0] == rising
    assert all(i["category"] == category for i in in_category["items"])


def test_live_purchases_make_an_item_trend_at_once(shop: TestClient, planted: tuple[Path, str, str]) -> None:
    _, rising, _ = planted
    catalog = shop.get("/v1/bundles", params={"n": 1, "min_lift": 0}).json()  # any known item will do
    item = catalog["bundles"][0]["items"][0]["item_id"] if catalog["bundles"] else rising
    events = [{"user_id": f"live{k}", "item_id": item, "type": "purchase"} for k in range(6)]
    assert shop.post("/v1/events", json={"events": events}).status_code == 202
    body = shop.get("/v1/trending", params={"n": 5, "window_days": 1}).json()
    assert _ids(body)[0] == item and body["items"][0]["recent"] == 6  # today's live counts


def test_an_unknown_visitor_gets_trending_items_before_the_popular_list(
    shop: TestClient, planted: tuple[Path, str, str]
) -> None:
    _, rising, _ = planted
    one = shop.get("/v1/users/nobody-knows-me/recommendations", params={"n": 1}).json()
    assert one["source"] == "trending" and _ids(one) == [rising]
    many = shop.get("/v1/users/nobody-knows-me/recommendations", params={"n": 100}).json()
    assert many["source"] == "popular"  # fewer than 100 items trend: the popular list instead
