"""The marketers' rules and trending pages: checked like the API, and driven in a real Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from tests.harness import Server

ARTIFACTS = Path(
    os.environ.get("ORDERLIFT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)


@pytest.fixture
def signed_in(artifact_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        model_uri=str(artifact_dir),
        event_log=tmp_path / "e.jsonl",
        api_keys=("shop",),
        marketer_keys=("mkt",),
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/ui/rules", follow_redirects=False).headers["location"] == "/ui/login"
        client.post("/ui/login", data={"key": "mkt"})
        yield client


def test_the_rules_page_adds_a_rule_names_a_bad_field_and_deletes(
    signed_in: TestClient, artifact: ModelArtifact
) -> None:
    item = str(artifact.items.ids[0])
    bad = signed_in.post("/ui/rules", data={"action": "pin", "item_ids": item, "position": ""})
    assert bad.status_code == 422 and "position: a pin needs a position" in bad.text
    assert f'value="{item}"' in bad.text  # the form is kept
    made = signed_in.post("/ui/rules", data={"action": "hide", "item_ids": item, "placements": "home"})
    assert made.status_code == 200 and item in made.text  # redirected to the list
    rules = signed_in.get("/v1/admin/rules", headers={"X-API-Key": "shop"})
    assert rules.status_code == 403  # the page's session is not a key; a storefront key may not read rules
    stored = signed_in.app.state.orderlift.rules.book.rules  # type: ignore[attr-defined]
    assert [(r.action, r.item_ids, r.placements) for r in stored] == [("hide", [item], ["home"])]
    signed_in.post(f"/ui/rules/{stored[0].id}/delete")
    assert "No rules yet." in signed_in.get("/ui/rules").text


def test_the_trending_page_lists_items_with_the_counts_behind_them(signed_in: TestClient) -> None:
    page = signed_in.get("/ui/trending", params={"window_days": 14})
    assert page.status_code == 200 and '<table id="trending">' in page.text
    assert "last 14 days" in page.text and "<script" not in page.text


def test_a_marketer_hides_a_category_on_the_rules_page_in_a_real_browser(
    artifact_dir: Path, tmp_path: Path, browser: Any
) -> None:
    env = {
        "ORDERLIFT_MODEL_URI": str(artifact_dir),
        "ORDERLIFT_API_KEYS": "shop",
        "ORDERLIFT_MARKETER_KEYS": "mkt",
        "ORDERLIFT_EVENT_LOG": str(tmp_path / "e.jsonl"),
    }
    server = Server(env).start()
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.goto(f"{server.url}/ui/login")
        page.fill("#key", "mkt")
        page.click("#sign-in")
        page.wait_for_load_state("load")
        page.click("#nav-rules")
        page.wait_for_load_state("load")
        page.select_option("#action", "hide")
        page.select_option("#rule-category", "laptops")
        page.fill("#note", "recall")
        page.click("#add-rule")
        page.wait_for_load_state("load")
        row = page.locator("#rules tbody tr").first
        assert "hide" in row.inner_text() and "laptops" in row.inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-rules.png"), full_page=True)
        page.click("#nav-bundles")
        page.wait_for_load_state("load")
        assert "Laptop" not in page.locator("#bundles").inner_text()  # the hide reaches the bundles
        page.click("#nav-trending")
        page.wait_for_load_state("load")
        assert page.locator("#trending").count() == 1
        page.click("#nav-rules")
        page.wait_for_load_state("load")
        page.locator("#rules button.delete").first.click()
        page.wait_for_load_state("load")
        assert "No rules yet." in page.locator("#rules").inner_text()
    finally:
        server.kill()
