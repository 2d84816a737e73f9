"""Shopper feedback: a dismissed item never comes back to that shopper, on any endpoint, on any worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from tests.harness import Server


@pytest.fixture
def shop(artifact_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_uri=str(artifact_dir), event_log=tmp_path / "e.jsonl"))) as c:
        yield c


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def _dismiss(client: Any, user: str, item: str, reason: str | None = None) -> None:
    event = {"user_id": user, "item_id": item, "type": "dismiss", **({"reason": reason} if reason else {})}
    assert client.post("/v1/events", json={"events": [event]}).status_code == 202


def test_a_dismissed_item_leaves_every_answer_to_that_shopper_at_once(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = str(artifact.users.ids[0])
    url = f"/v1/users/{user}/recommendations"
    first = _ids(shop.get(url, params={"n": 10}).json())
    assert shop.get(url, params={"n": 10}).headers["x-cache"] == "hit"
    anchor = str(artifact.items.ids[int(artifact.copurchase.item_counts.argmax())])
    cart = {"items": [{"item_id": anchor}], "n": 10, "user_id": user}
    partner = _ids(shop.post("/v1/cart/cross-sell", json=cart).json())[0]
    similar = _ids(shop.get(f"/v1/items/{anchor}/similar", params={"user_id": user}).json())[0]
    trending = _ids(shop.get("/v1/trending", params={"n": 3, "user_id": user}).json())[0]
    for item in {first[0], partner, similar, trending}:
        _dismiss(shop, user, item, "too expensive")
    gone = {first[0], partner, similar, trending}
    assert not gone & set(_ids(shop.get(url, params={"n": 30}).json()))  # not the cached answer
    assert not gone & set(_ids(shop.post("/v1/cart/cross-sell", json=cart).json()))
    session = {"user_id": user, "recent_items": [anchor], "n": 30}
    assert not gone & set(_ids(shop.post("/v1/recommendations", json=session).json()))
    kinds = ("also_bought", "similar")
    for kind in kinds:
        answer = shop.get(f"/v1/items/{anchor}/similar", params={"user_id": user, "kind": kind, "n": 50})
        assert not gone & set(_ids(answer.json()))
    assert not gone & set(_ids(shop.get("/v1/trending", params={"n": 50, "user_id": user}).json()))
    everyone = shop.get(f"/v1/items/{anchor}/similar", params={"kind": "similar"}).json()
    assert similar in _ids(everyone)  # other shoppers still see it


def test_marketers_see_the_most_dismissed_items_per_category_and_reason(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    item = str(artifact.items.ids[5])
    category = str(artifact.item_meta.loc[5, "category"])
    for k, reason in enumerate(["too expensive", "too expensive", "not my style", None]):
        _dismiss(shop, f"shopper-{k}", item, reason)
    _dismiss(shop, "shopper-9", str(artifact.items.ids[6]), "seen it")
    body = shop.get("/v1/experiments/dismissals", params={"category": category}).json()
    top = body["categories"][0]["items"][0]
    assert body["categories"][0]["category"] == category and top["item_id"] == item
    assert top["dismissals"] == 4
    assert top["reasons"] == {"not my style": 1, "too expensive": 2, "unspecified": 1}
    page = shop.get("/ui/dismissed").text
    assert "too expensive: 2" in page and category in page


@pytest.mark.redis
def test_a_dismissal_holds_on_every_worker_at_once(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str, tmp_path: Path
) -> None:
    env = {"ORDERLIFT_MODEL_URI": str(artifact_dir), "ORDERLIFT_REDIS_URL": redis_url}
    server = Server(env, tmp_path, workers=2).start()
    try:
        user = str(artifact.users.ids[0])
        url = f"{server.url}/v1/users/{user}/recommendations"
        top = [_ids(httpx.get(url, params={"n": 10}).json())[0] for _ in range(8)]  # cached on both
        assert len(set(top)) == 1
        with httpx.Client(base_url=server.url) as client:
            _dismiss(client, user, top[0], "not for me")
        assert all(top[0] not in _ids(httpx.get(url, params={"n": 10}).json()) for _ in range(16))
    finally:
        server.stop()
