"""Placements and channels: echoed in answers, carried in recommendation ids, attributed in the report."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from features.eventlog import served_by
from service.app import create_app
from service.config import Settings


def test_answers_name_their_placement_and_channel_and_the_report_breaks_down_by_them(
    artifact_dir: Path, artifact: ModelArtifact, tmp_path: Path
) -> None:
    user, item = str(artifact.users.ids[0]), str(artifact.items.ids[0])
    with TestClient(
        create_app(Settings(model_uri=str(artifact_dir), event_log=tmp_path / "e.jsonl"))
    ) as shop:
        home = shop.get(
            f"/v1/users/{user}/recommendations", params={"placement": "home", "channel": "app"}
        ).json()
        cart = shop.post(
            "/v1/cart/cross-sell", json={"items": [{"item_id": item}], "placement": "cart"}
        ).json()
        email = shop.get("/v1/trending", params={"channel": "email"}).json()
        bundles = shop.get("/v1/bundles", params={"placement": "product", "channel": "web"}).json()
        assert (bundles["placement"], bundles["channel"]) == ("product", "web")
        assert served_by(bundles["recommendation_id"]) == ("default", "product", "web")
        assert (home["placement"], home["channel"]) == ("home", "app")
        assert served_by(home["recommendation_id"]) == ("default", "home", "app")
        assert served_by(cart["recommendation_id"]) == ("default", "cart", None) and cart["channel"] is None
        assert served_by(email["recommendation_id"]) == ("default", None, "email")
        events = [
            {"user_id": user, "item_id": home["items"][0]["item_id"], "type": "impression",
             "recommendation_id": home["recommendation_id"]},
            {"user_id": user, "item_id": home["items"][0]["item_id"], "type": "click",
             "recommendation_id": home["recommendation_id"]},
            {"user_id": "u-cart", "item_id": cart["items"][0]["item_id"], "type": "purchase", "price": 10.0,
             "quantity": 2, "order_id": "o-1", "recommendation_id": cart["recommendation_id"]},
            {"user_id": "u-mail", "item_id": item, "type": "impression", "placement": "newsletter",
             "recommendation_id": email["recommendation_id"]},
        ]  # fmt: skip
        assert shop.post("/v1/events", json={"events": events}).status_code == 202
        report = shop.get("/v1/experiments/report").json()
    placements, channels = report["by_placement"], report["by_channel"]
    assert set(placements) == {"home", "cart", "newsletter"}  # an event's own placement wins over its id's
    assert placements["home"]["clicks"] == 1 and placements["home"]["impressions"] == 1
    assert placements["cart"]["revenue"] == 20.0 and placements["cart"]["orders"] == 1
    assert set(channels) == {"app", "email"} and channels["email"]["impressions"] == 1
