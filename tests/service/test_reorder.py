"""Buy again over HTTP and in the campaign export: the customer's own past items, the most due first."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from training.cli import app as cli


@pytest.fixture
def shop(artifact_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(model_uri=str(artifact_dir), event_log=tmp_path / "events.jsonl")
    with TestClient(create_app(settings)) as client:
        yield client


def _buyer(artifact: ModelArtifact, least: int = 4) -> str:
    """Return a customer who bought at least ``least`` distinct items."""
    assert artifact.reorder is not None
    counts = artifact.reorder.orders.getnnz(axis=1)
    return str(artifact.users.ids[int((counts >= least).argmax())])


def _reorder(shop: TestClient, user: str, **params: Any) -> dict[str, Any]:
    answer = shop.get(f"/v1/users/{user}/reorder", params={"n": 10, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_buy_again_lists_only_the_customers_own_past_items_the_most_due_first(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = _buyer(artifact)
    body = _reorder(shop, user)
    assert artifact.reorder is not None
    row = artifact.users.get(user)
    assert row is not None
    own = {str(artifact.items.ids[i]) for i in artifact.reorder.orders[row].indices}
    items = body["items"]
    assert body["source"] == "reorder" and len(items) == min(10, len(own))
    assert {i["item_id"] for i in items} <= own
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert all(i["times_bought"] >= 1 and i["last_bought"] <= body["as_of"] for i in items)
    assert body["recommendation_id"].startswith("default.-.-.")
    nobody = _reorder(shop, "never-bought-anything")
    assert nobody["items"] == [] and nobody["source"] == "no_history"


def test_an_item_bought_or_dismissed_since_training_is_not_due_again(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = _buyer(artifact)
    first, second = (i["item_id"] for i in _reorder(shop, user)["items"][:2])
    events = [
        {"user_id": user, "item_id": first, "type": "purchase", "order_id": "live-1", "price": 1.0},
        {"user_id": user, "item_id": second, "type": "dismiss"},
    ]
    assert shop.post("/v1/events", json={"events": events}).status_code == 202
    after = [i["item_id"] for i in _reorder(shop, user)["items"]]
    assert second not in after and (first not in after or after.index(first) == len(after) - 1)


def test_a_rule_for_the_reorder_placement_applies_and_the_horizon_is_bounded(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = _buyer(artifact)
    top = _reorder(shop, user)["items"][0]["item_id"]
    rule = {"action": "hide", "item_ids": [top], "placements": ["reorder"]}
    assert shop.post("/v1/admin/rules", json=rule).status_code == 201
    assert top not in [i["item_id"] for i in _reorder(shop, user)["items"]]
    bad = shop.get(f"/v1/users/{user}/reorder", params={"horizon_days": 1000})
    assert bad.status_code == 422 and "horizon_days" in bad.text


def test_a_reorder_campaign_export_holds_the_lists_the_endpoint_answers(
    shop: TestClient,
    artifact_dir: Path,
    artifact: ModelArtifact,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ORDERLIFT_REDIS_URL", raising=False)
    out = tmp_path / "reorder.csv"
    args = [
        "export-recommendations",
        "--model-uri",
        str(artifact_dir),
        "--placement",
        "reorder",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args, env={"ORDERLIFT_EVENT_LOG": str(tmp_path / "events.jsonl")})
    assert result.exit_code == 0, result.output
    lists: dict[str, list[str]] = {}
    for row in csv.DictReader(out.open()):
        lists.setdefault(row["user_id"], []).append(row["item_id"])
        assert row["recommendation_id"].startswith("default.reorder.-.")
    user = _buyer(artifact)
    served = _reorder(shop, user, n=6, placement="reorder")
    assert lists[user] == [i["item_id"] for i in served["items"]]
