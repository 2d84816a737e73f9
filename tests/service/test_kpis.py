"""The shop's KPIs from the service: the training data's series, live events by hand, CSV, the page."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from features.dataset import Dataset
from features.kpis import history_kpis
from service.app import create_app
from service.config import Settings
from tests.harness import Server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def shop(artifact_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(model_uri=str(artifact_dir), event_log=tmp_path / "events.jsonl")
    with TestClient(create_app(settings)) as client:
        yield client


def _live_events(
    artifact: ModelArtifact, recommendation_id: str
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Return November and December events of three shoppers, and each purchased item's price and cost."""
    cost = dict(zip(artifact.item_meta["item_id"].astype(str), artifact.item_meta["cost"], strict=True))
    x, y = (str(i) for i in artifact.items.ids[:2])
    nov, dec = "2026-11-03T10:00:00Z", "2026-12-01T09:00:00Z"
    rid = recommendation_id
    events: list[dict[str, Any]] = [
        {"user_id": "ua", "item_id": x, "type": "impression", "timestamp": nov, "recommendation_id": rid},
        {"user_id": "ua", "item_id": x, "type": "purchase", "timestamp": nov, "order_id": "o1",
         "quantity": 2.0, "price": 10.0, "recommendation_id": rid},
        {"user_id": "ub", "item_id": y, "type": "click", "timestamp": nov},
        {"user_id": "uc", "item_id": y, "type": "purchase", "timestamp": nov, "order_id": "o2", "price": 4.0},
        {"user_id": "uc", "item_id": y, "type": "purchase", "timestamp": dec, "order_id": "o3", "price": 6.0},
    ]  # fmt: skip
    return events, {"x_cost": float(cost[x]), "y_cost": float(cost[y])}


def test_the_training_series_is_the_kpis_of_the_data_the_model_was_trained_on(
    shop: TestClient, artifact: ModelArtifact, dataset: Dataset
) -> None:
    expected = history_kpis(dataset.events, dataset.anonymous, dataset.catalog)
    assert artifact.kpis is not None and artifact.kpis["week"] == expected.series("week")
    body = shop.get("/v1/kpis", params={"by": "month"}).json()
    assert body["training"] == expected.series("month") and body["training"]["discount_basis"] == "cost"
    assert body["live"]["series"]["rows"] == [] and body["live_error"] is None
    assert set(body["formulas"]) >= {"conversion_rate", "aov", "purchase_frequency", "discount_rate"}


def test_live_kpis_match_a_hand_count_of_the_events_sent(shop: TestClient, artifact: ModelArtifact) -> None:
    user = str(artifact.users.ids[0])
    rid = shop.get(f"/v1/users/{user}/recommendations", params={"n": 3}).json()["recommendation_id"]
    events, costs = _live_events(artifact, rid)
    assert shop.post("/v1/events", json={"events": events}).status_code == 202
    body = shop.get("/v1/kpis", params={"by": "month"}).json()
    rows = {r["period"]: r for r in body["live"]["series"]["rows"]}
    assert list(rows) == ["2026-11", "2026-12", "all"]
    nov, every = rows["2026-11"], rows["all"]
    # November: ua, ub, uc act; ua and uc buy; o1 = 2 x 10, o2 = 1 x 4 (no quantity: one).
    assert (nov["users"], nov["customers"], nov["orders"], nov["revenue"]) == (3, 2, 2, 24.0)
    assert nov["conversion_rate"] == pytest.approx(2 / 3) and nov["aov"] == pytest.approx(12.0)
    assert nov["purchase_frequency"] == pytest.approx(1.0)
    margin = (10.0 - costs["x_cost"]) * 2 + (4.0 - costs["y_cost"])
    assert nov["discount_rate"] == pytest.approx(margin / 24.0)
    assert (every["customers"], every["orders"], every["revenue"]) == (2, 3, 30.0)
    assert every["purchase_frequency"] == pytest.approx(3 / 2)
    weeks = [
        r["period"] for r in shop.get("/v1/kpis", params={"by": "week"}).json()["live"]["series"]["rows"]
    ]
    assert weeks == ["2026-11-02", "2026-11-30", "all"]
    variant = body["live"]["by_variant"]["default"]  # only ua's events carry a recommendation id
    assert (variant["users"], variant["orders"], variant["aov"]) == (1, 1, 20.0)


def test_the_kpi_csv_has_both_sources_and_a_bad_period_is_422(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    events, _ = _live_events(artifact, "default.-.-.00")
    shop.post("/v1/events", json={"events": events})
    answer = shop.get("/v1/kpis", params={"by": "month", "format": "csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert {r["source"] for r in rows} == {"training", "live"}
    assert [r["period"] for r in rows if r["source"] == "live"] == ["2026-11", "2026-12", "all"]
    bad = shop.get("/v1/kpis", params={"by": "year"})
    assert bad.status_code == 422 and "by" in bad.text and "year" in bad.text


def test_a_marketer_reads_the_kpis_over_time_in_a_real_browser(
    artifact_dir: Path, artifact: ModelArtifact, browser: Any, tmp_path: Path
) -> None:
    env = {
        "ORDERLIFT_MODEL_URI": str(artifact_dir),
        "ORDERLIFT_API_KEYS": "shop",
        "ORDERLIFT_MARKETER_KEYS": "mkt",
        "ORDERLIFT_EVENT_LOG": str(tmp_path / "events.jsonl"),
    }
    server = Server(env).start()
    try:
        events, _ = _live_events(artifact, "default.-.-.00")
        sent = httpx.post(f"{server.url}/v1/events", json={"events": events}, headers={"X-API-Key": "shop"})
        assert sent.status_code == 202, sent.text
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server.url}/ui/kpis")
        page.fill("#key", "mkt")
        page.click("#sign-in")
        page.goto(f"{server.url}/ui/kpis")
        assert page.locator("svg polyline.training").count() == 4
        assert page.locator("svg polyline.live").count() == 4
        assert page.locator("#kpis-live tbody tr").count() == 3
        assert page.locator("#kpis-training tbody tr").count() >= 2
        assert "revenue / orders" in page.locator("#formulas").inner_text()
        page.select_option("#by", "week")
        page.click("#apply")
        page.wait_for_load_state("load")
        assert "by=week" in page.url and page.locator("#kpis-live tbody tr").count() == 3
        with page.expect_download() as download:
            page.click("#download")
        assert download.value.suggested_filename == "kpis-week.csv"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-kpis.png"), full_page=True)
    finally:
        server.kill()
