"""Request ids, JSON access logs and Prometheus metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.observability import JsonFormatter


def test_a_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32 and generated != "req-123"


def test_each_request_is_logged_as_one_json_line_without_user_data(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="orderlift.access"):
        client.get(
            "/v1/users/secret-user-id/recommendations", params={"n": 2}, headers={"X-Request-ID": "r-9"}
        )
    record = next(r for r in caplog.records if r.name == "orderlift.access")
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "r-9" and line["status"] == 200
    assert line["route"] == "/v1/users/{user_id}/recommendations"
    assert line["model_version"].startswith("artifact-") and line["latency_ms"] > 0
    assert "secret-user-id" not in json.dumps(line)


def test_metrics_count_requests_cache_model_and_events(client: TestClient, artifact_dir: Path) -> None:
    client.get("/v1/users/metrics-user/recommendations")
    client.get("/v1/users/metrics-user/recommendations")
    client.get("/v1/items/ghost/similar")
    client.post("/v1/events", json=[{"user_id": "m", "item_id": "i", "type": "view"}, {"user_id": "m"}])
    lines = client.get("/metrics").text.splitlines()

    def has(prefix: str, nonzero: bool = False) -> bool:
        return any(line.startswith(prefix) and not (nonzero and line.endswith(" 0.0")) for line in lines)

    route = "/v1/users/{user_id}/recommendations"
    assert has(f'orderlift_requests_total{{method="GET",route="{route}",status="200"}}')
    assert has('orderlift_requests_total{method="GET",route="/v1/items/{item_id}/similar",status="404"}')
    assert has("orderlift_request_seconds_bucket")
    assert has('orderlift_cache_operations_total{backend="memory",result="hits"}', nonzero=True)
    assert has('orderlift_model_info{kind="als",variant="default"')
    assert has('orderlift_events_total{outcome="accepted"}', nonzero=True)
    assert has('orderlift_events_total{outcome="rejected"}', nonzero=True)
    assert "orderlift_reloads_failed_total 0.0" in lines
    assert has("orderlift_fallback_trending_total", nonzero=True)


def test_l6_an_unknown_method_is_counted_as_other(artifact_dir: Path) -> None:
    with TestClient(create_app(Settings(model_uri=str(artifact_dir)))) as client:
        client.request("FROBNICATE", "/healthz")
        text = client.get("/metrics").text
    assert 'method="other"' in text and "FROBNICATE" not in text


def test_l5_an_unexpected_error_logs_the_route_template_not_the_user_id(
    artifact_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from service.scorer import Scorer

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    with TestClient(
        create_app(Settings(model_uri=str(artifact_dir))), raise_server_exceptions=False
    ) as client:
        monkeypatch.setattr(Scorer, "for_user", boom)
        answer = client.get("/v1/users/alice-secret/recommendations", params={"category": "x"})
    assert answer.status_code == 500
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "unexpected error" in logged and "alice-secret" not in logged
    assert "/v1/users/{user_id}/recommendations" in logged
