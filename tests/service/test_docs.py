"""/docs renders with no third-party assets, and every page sends a Content-Security-Policy."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_docs_render_from_local_assets_with_a_content_security_policy(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn.jsdelivr" not in page.text and "https://" not in page.text  # was: Swagger UI from a CDN
    assert "/static/swagger/swagger-ui-bundle.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/static/swagger/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000
    assert client.get("/static/swagger/swagger-ui.css").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc only loads from a CDN: not served


def test_the_marketers_page_sends_a_content_security_policy(client: TestClient) -> None:
    page = client.get("/ui/bundles")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
