"""Margins: cross-sell by expected margin, and bundle discounts that keep the minimum margin."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from features.dataset import load_dataset
from features.io import resolve_format
from service.app import create_app
from service.config import Settings
from training.job import TrainConfig, run_training


def _anchor(artifact: ModelArtifact) -> str:
    return str(artifact.items.ids[int(artifact.copurchase.item_counts.argmax())])


def test_cross_sell_by_margin_ranks_by_expected_margin_and_reports_it(
    client: TestClient, artifact: ModelArtifact
) -> None:
    cost = dict(zip(artifact.item_meta["item_id"], artifact.item_meta["cost"], strict=True))
    body = {"items": [{"item_id": _anchor(artifact)}], "n": 10, "rank_by": "margin"}
    answer = client.post("/v1/cart/cross-sell", json=body).json()
    assert answer["ranked_by"] == "P x margin" and len(answer["items"]) == 10
    expected = [i["expected_margin"] for i in answer["items"]]
    assert expected == sorted(expected, reverse=True)
    for item in answer["items"]:
        assert item["margin"] == pytest.approx(item["price"] - cost[item["item_id"]], abs=0.011)
        assert item["expected_margin"] == pytest.approx(
            item["probability"] * item["margin"], rel=1e-3, abs=1e-3
        )


def test_bundle_discounts_never_take_a_bundle_below_the_minimum_margin(
    artifact_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(model_uri=str(artifact_dir), event_log=tmp_path / "e.jsonl", min_margin=0.4)
    with TestClient(create_app(settings)) as client:
        bundles = client.get("/v1/bundles", params={"n": 100, "min_lift": 0, "min_orders": 2}).json()[
            "bundles"
        ]
        csv = client.get("/v1/bundles", params={"n": 100, "min_lift": 0, "min_orders": 2, "format": "csv"})
    assert bundles and "discount_note" in csv.text.splitlines()[0]
    plain = [b for b in bundles if b["discount_note"] is None]
    lowered = [b for b in bundles if b["discount_note"] and b["suggested_discount_pct"] > 0]
    none = [b for b in bundles if b["suggested_discount_pct"] == 0]
    assert plain and none  # with costs at 45-85% of price, a 40% floor rules out many discounts
    for b in bundles:
        paid = b["combined_price"] * (1 - b["suggested_discount_pct"] / 100)
        assert b["margin"] == pytest.approx(paid - b["combined_cost"], abs=0.011)
        if b["suggested_discount_pct"] > 0:
            assert b["margin"] >= 0.4 * paid - 0.011
            assert 5.0 <= b["suggested_discount_pct"] <= 20.0
        assert b["expected_revenue"] == pytest.approx(b["orders_with_bundle"] * paid, abs=0.011)
    for b in none:
        assert "no discount" in b["discount_note"]
        assert b["combined_price"] * 0.95 - b["combined_cost"] < 0.4 * b["combined_price"] * 0.95
    for b in lowered:
        assert "lowered" in b["discount_note"]


def test_without_costs_everything_works_as_before_and_margin_ranking_says_why_not(tmp_path: Path) -> None:
    lines = ["user_id,item_id,event_type,timestamp,order_id,quantity,price"]
    for number, items in enumerate(("AB", "AB", "ABC", "AC", "BC")):
        lines += [
            f"u{number},{i},purchase,2024-01-0{number + 1} 10:00:00,o{number},1,{ord(i) - 60}" for i in items
        ]
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    dataset = load_dataset(tmp_path / "events.csv", resolve_format())
    run_training(
        dataset, TrainConfig(model="popular", holdout=None), tmp_path / "model", {"fingerprint": "t"}
    )
    settings = Settings(model_uri=str(tmp_path / "model"), event_log=tmp_path / "e.jsonl")
    with TestClient(create_app(settings)) as client:
        cart = {"items": [{"item_id": "A"}], "n": 2}
        plain = client.post("/v1/cart/cross-sell", json=cart).json()
        assert plain["items"] and all(i["margin"] is None for i in plain["items"])
        refused = client.post("/v1/cart/cross-sell", json={**cart, "rank_by": "margin"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "rank_by"
        bundles = client.get("/v1/bundles", params={"min_lift": 0, "min_orders": 2}).json()["bundles"]
        assert bundles and all(b["margin"] is None and b["discount_note"] is None for b in bundles)
