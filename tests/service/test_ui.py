"""The marketers' page: rendered by the server, guarded by the key, and driven in a real Chromium."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.harness import Server

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


def test_h2_m10_the_page_signs_in_a_marketer_key_into_a_session_cookie_that_never_holds_the_key(
    artifact_dir: Path,
) -> None:
    settings = Settings(
        model_uri=str(artifact_dir), api_keys=("shop",), marketer_keys=("mkt",), admin_keys=("boss",)
    )
    with TestClient(create_app(settings)) as c:
        away = c.get("/ui/bundles", follow_redirects=False)
        assert away.status_code == 303 and away.headers["location"] == "/ui/login"
        assert c.get("/ui/bundles", params={"key": "mkt"}, follow_redirects=False).status_code == 303
        assert c.get("/ui/bundles.csv").status_code == 401
        for refused in ("wrong", "shop", "boss"):  # storefront and admin keys do not open the page
            answer = c.post("/ui/login", data={"key": refused}, follow_redirects=False)
            assert answer.status_code == 401 and "not a marketer key" in answer.text
        signed = c.post("/ui/login", data={"key": "mkt"}, follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/bundles"
        cookie = signed.headers["set-cookie"]
        assert "orderlift_session=" in cookie and "mkt" not in cookie.split(";")[0].split("=", 1)[1]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert "max-age=28800" in cookie.lower()
        assert c.get("/ui/bundles", params={"size": 3}).status_code == 200
        assert c.get("/ui/bundles.csv").status_code == 200
        session = c.cookies.get("orderlift_session")
        assert session is not None
        # the session is not a key: /v1 refuses it
        assert c.get("/v1/bundles", headers={"X-API-Key": session}).status_code == 401
        c.post("/ui/logout")
        assert c.get("/ui/bundles", follow_redirects=False).status_code == 303


def test_m10_the_session_cookie_is_secure_behind_https(artifact_dir: Path) -> None:
    settings = Settings(model_uri=str(artifact_dir), marketer_keys=("mkt",))
    with TestClient(create_app(settings), base_url="https://shop.example") as c:
        signed = c.post("/ui/login", data={"key": "mkt"}, follow_redirects=False)
        assert "secure" in signed.headers["set-cookie"].lower()


def test_h2_a_session_signed_by_a_removed_key_or_forged_no_longer_opens_the_page(artifact_dir: Path) -> None:
    from service.auth import issue_session, session_valid

    old = Settings(marketer_keys=("old", "new"))
    session = issue_session(old, "old", now=1_000.0)
    assert session is not None and session_valid(old, session, now=1_001.0)
    assert not session_valid(Settings(marketer_keys=("new",)), session, now=1_001.0)  # rotated out
    assert not session_valid(old, session, now=1_000.0 + 8 * 3600 + 1)  # expired
    expires, kid, _ = session.split(".")
    assert not session_valid(old, f"{int(expires) + 9999}.{kid}.{'0' * 64}", now=1_001.0)


def test_a_marketer_filters_bundles_in_a_real_browser(artifact_dir: Path, browser: Any) -> None:
    env = {
        "ORDERLIFT_MODEL_URI": str(artifact_dir),
        "ORDERLIFT_API_KEYS": "shop",
        "ORDERLIFT_MARKETER_KEYS": "mkt",
    }
    server = Server(env).start()
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{server.url}/ui/bundles")
        assert page.url.endswith("/ui/login")
        page.fill("#key", "mkt")
        page.click("#sign-in")
        page.wait_for_load_state("load")
        assert page.url.endswith("/ui/bundles") and "mkt" not in page.url
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
    finally:
        server.kill()
    assert (ARTIFACTS / "ui-bundles-laptops.png").stat().st_size > 10_000


def test_the_page_template_escapes_shop_data(artifact_dir: Path) -> None:
    from starlette.requests import Request

    from service.routes.ui import PAGES

    evil = {"item_id": "i<1>", "name": '<script>alert("x")</script>', "price": 1.0}
    bundle = {"items": [evil, evil], "combined_price": 2.0, "lift": 2.0, "orders_with_bundle": 3,
              "suggested_discount_pct": 5.0, "expected_revenue": 5.7}  # fmt: skip
    bar = {"name": evil["name"], "y": 0, "length": 10.0, "revenue": 5.7}
    context = {"bundles": [bundle], "bars": [bar], "chart": {"label": 260, "width": 770, "height": 26},
               "categories": ['"><img>'], "size": 2, "category": None, "query": "size=2",
               "version": "v<1>", "signed": False}  # fmt: skip
    request = Request(
        {"type": "http", "method": "GET", "path": "/ui/bundles", "headers": [], "query_string": b""}
    )
    html = PAGES.TemplateResponse(request, "bundles.html", context).body.decode()
    assert "<script" not in html and "<img>" not in html and "i<1>" not in html
    assert "&lt;script&gt;" in html and "v&lt;1&gt;" in html
