"""The fast lane: plain recommendation and cross-sell requests skip FastAPI, with the same answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from service.fastlane import recommendation_query
from tests.conftest import without_recommendation_id


@pytest.mark.parametrize(
    ("query", "parsed"),
    [
        (b"", (10, False)),
        (b"n=5", (5, False)),
        (b"n=100&explain=true", (100, True)),
        (b"explain=false", (10, False)),
        (b"n=0", None),
        (b"n=101", None),
        (b"n=007", None),
        (b"n=five", None),
        (b"n=5&n=6", None),
        (b"explain=1", None),
        (b"n=5&category=toys", None),
    ],
)
def test_only_canonical_n_and_explain_take_the_fast_lane(
    query: bytes, parsed: tuple[int, bool] | None
) -> None:
    assert recommendation_query(query) == parsed


def test_a_fast_answer_is_cached_under_the_key_the_full_route_reads(
    client: TestClient, artifact: ModelArtifact
) -> None:
    user = str(artifact.users.ids[3])
    fast = client.get(f"/v1/users/{user}/recommendations", params={"n": 4})
    full = client.get(f"/v1/users/{user}/recommendations", params={"n": 4, "in_stock_only": "false"})
    assert (fast.headers["x-cache"], full.headers["x-cache"]) == ("miss", "hit")
    assert without_recommendation_id(fast.content) == without_recommendation_id(full.content)
    assert fast.headers["content-type"] == "application/json"
    assert fast.headers["x-model-version"] == full.headers["x-model-version"]


def test_errors_on_the_fast_paths_still_come_from_the_api(
    client: TestClient, artifact: ModelArtifact
) -> None:
    bad_n = client.get("/v1/users/u1/recommendations", params={"n": 0})
    assert bad_n.status_code == 422 and bad_n.json()["error"]["field"] == "n"
    item = str(artifact.items.ids[0])
    body = client.post("/v1/cart/cross-sell", json={"items": [{"item_id": item}], "n": 0})
    assert body.status_code == 422 and body.json()["error"]["field"] == "n"
    broken = client.post(
        "/v1/cart/cross-sell", content=b'{"items": [', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_request"


def test_keys_are_checked_on_the_fast_paths(artifact_dir: Path, artifact: ModelArtifact) -> None:
    settings = Settings(model_uri=str(artifact_dir), api_keys=("k1",))
    cart = {"items": [{"item_id": str(artifact.items.ids[0])}]}
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/users/u1/recommendations").status_code == 401
        assert client.get("/v1/users/u1/recommendations", headers={"X-API-Key": "k2"}).status_code == 401
        assert client.post("/v1/cart/cross-sell", json=cart).status_code == 401
        assert client.get("/v1/users/u1/recommendations", headers={"X-API-Key": "k1"}).status_code == 200
        assert client.post("/v1/cart/cross-sell", json=cart, headers={"X-API-Key": "k1"}).status_code == 200


def test_a_body_sent_in_chunks_is_read_whole(client: TestClient, artifact: ModelArtifact) -> None:
    item = str(artifact.items.ids[int(np.argmax(artifact.copurchase.item_counts))])
    body = orjson.dumps({"items": [{"item_id": item, "quantity": 1}], "n": 3})
    chunks = [
        {"type": "http.request", "body": body[:7], "more_body": True},
        {"type": "http.request", "body": body[7:], "more_body": False},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/cart/cross-sell",
        "raw_path": b"/v1/cart/cross-sell",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 200
    answer = orjson.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert answer["cart_items"] == [item] and len(answer["items"]) == 3


def test_a_json_body_with_a_charset_is_answered_and_other_media_types_go_on(
    client: TestClient, artifact: ModelArtifact
) -> None:
    body = orjson.dumps({"items": [{"item_id": str(artifact.items.ids[0])}], "n": 2})
    sent = client.post(
        "/v1/cart/cross-sell", content=body, headers={"content-type": "application/json; charset=utf-8"}
    )
    assert sent.status_code == 200 and len(sent.json()["items"]) == 2
    other = client.post("/v1/cart/cross-sell", content=body, headers={"content-type": "application/jsonx"})
    assert other.status_code == 422


def test_the_fast_lane_takes_its_default_and_limit_of_n_from_the_schemas() -> None:
    import service.fastlane as lane
    from service.schemas import N_DEFAULT, N_MAX

    assert recommendation_query(b"") == (N_DEFAULT, False)
    assert recommendation_query(f"n={N_MAX}".encode()) == (N_MAX, False)
    assert recommendation_query(f"n={N_MAX + 1}".encode()) is None  # left to FastAPI's 422
    assert lane.N_MAX is N_MAX
