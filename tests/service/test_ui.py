"""The marketers' page: rendered by the server, guarded by the key, and driven in a real Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.service.server import Server

ARTIFACTS = Path(
    os.environ.get("ORDERLIFT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)


def test_the_page_shows_bundles_a_chart_filters_and_a_download(client: TestClient) -> None:
    page = client.get("/ui/bundles")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for part in (
        '<table id="bundles">',
        "<svg",
        'id="category"',
        'id="size"',
        "Download CSV",
        "Suggested discount",
    ):
        assert part in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    csv = client.get("/ui/bundles.csv", params={"size": 2})
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("item_ids,")


def test_the_page_needs_the_key_once_and_then_keeps_it_in_a_cookie(bundle_dir: Path) -> None:
    with TestClient(create_app(Settings(model_uri=str(bundle_dir), api_keys=("k1",)))) as c:
        assert c.get("/ui/bundles").status_code == 401
        assert c.get("/ui/bundles", params={"key": "wrong"}).status_code == 401
        first = c.get("/ui/bundles", params={"key": "k1"})
        assert first.status_code == 200 and "orderlift_key" in first.headers["set-cookie"]
        assert "httponly" in first.headers["set-cookie"].lower()
        assert c.get("/ui/bundles", params={"size": 3}).status_code == 200  # the cookie carries the key
        assert c.get("/ui/bundles.csv").status_code == 200


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_a_marketer_filters_bundles_in_a_real_browser(bundle_dir: Path) -> None:
    browser_path = _chromium()
    if browser_path is None:
        if os.environ.get("ORDERLIFT_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    server = Server({"ORDERLIFT_MODEL_URI": str(bundle_dir), "ORDERLIFT_API_KEYS": "marketing-key"}).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=browser_path,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{server.url}/ui/bundles?key=marketing-key")
            assert page.locator("#bundles tbody tr").count() >= 2
            assert page.locator("svg rect").count() == page.locator("#bundles tbody tr").count()
            page.select_option("#category", "laptops")
            page.click("#apply")
            page.wait_for_load_state("load")
            assert "category=laptops" in page.url
            rows = page.locator("#bundles tbody tr")
            assert rows.count() >= 1
            assert all("Laptop" in rows.nth(i).inner_text() for i in range(rows.count()))
            with page.expect_download() as download:
                page.click("#download")
            assert download.value.suggested_filename == "bundles-size2.csv"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "ui-bundles-laptops.png"), full_page=True)
            browser.close()
    finally:
        server.kill()
    assert (ARTIFACTS / "ui-bundles-laptops.png").stat().st_size > 10_000
