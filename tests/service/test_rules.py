"""Merchandising rules over HTTP (in-process store): actions, placements, windows, cache, errors, roles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings


@pytest.fixture
def shop(artifact_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    """Return a client of a service whose rules live in a file of its own."""
    settings = Settings(model_uri=str(artifact_dir), event_log=tmp_path / "events.jsonl")
    with TestClient(create_app(settings)) as client:
        yield client


def _user(artifact: ModelArtifact) -> str:
    return str(artifact.users.ids[0])


def _recs(client: TestClient, user: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/v1/users/{user}/recommendations", params={"n": 10, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def _add(client: TestClient, **rule: Any) -> dict[str, Any]:
    answer = client.post("/v1/admin/rules", json=rule)
    assert answer.status_code == 201, answer.text
    return answer.json()


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_a_pin_puts_the_item_where_pinned_for_its_placement_only(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = _user(artifact)
    before = _ids(_recs(shop, user))
    has = set(artifact.items.ids[artifact.history[0].indices].tolist())  # the user's own: never shown
    outsider = next(str(i) for i in artifact.items.ids[::-1] if str(i) not in before and str(i) not in has)
    rule = _add(
        shop, action="pin", item_ids=[outsider], position=3, placements=["home"], ends_at=_later(86_400)
    )
    home = _recs(shop, user, placement="home")
    assert _ids(home)[2] == outsider and home["rules_applied"] == [rule["id"]]
    assert [i for i in _ids(home) if i != outsider] == before[:9]  # the rest stays ranked by the model
    other = _recs(shop, user, placement="product")
    assert outsider not in _ids(other) and other["rules_applied"] == []


def test_hiding_a_category_keeps_it_out_of_every_list_endpoint(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = _user(artifact)
    category = artifact.item_meta["category"].value_counts().index[0]
    rule = _add(shop, action="hide", category=category, note="recall")
    in_category = set(artifact.item_meta.loc[artifact.item_meta["category"] == category, "item_id"])
    assert not in_category & set(_ids(_recs(shop, user, n=50)))
    anchor = str(artifact.items.ids[int(artifact.copurchase.item_counts.argmax())])
    for kind in ("also_bought", "similar"):
        similar = shop.get(f"/v1/items/{anchor}/similar", params={"kind": kind, "n": 30}).json()
        assert not in_category & set(_ids(similar))
    cart = shop.post("/v1/cart/cross-sell", json={"items": [{"item_id": anchor}], "n": 20}).json()
    assert not in_category & set(_ids(cart)) and rule["id"] in cart["rules_applied"]
    trending = shop.get("/v1/trending", params={"n": 50}).json()
    assert not in_category & set(_ids(trending))
    bundles = shop.get("/v1/bundles", params={"n": 50, "min_lift": 0}).json()["bundles"]
    assert not any(i["item_id"] in in_category for b in bundles for i in b["items"])


def test_a_boost_raises_an_item_and_a_bury_lowers_it(shop: TestClient, artifact: ModelArtifact) -> None:
    user = _user(artifact)
    before = _ids(_recs(shop, user))
    low, top = before[-1], before[0]
    _add(shop, action="boost", item_ids=[low], factor=1000)
    _add(shop, action="bury", item_ids=[top], factor=0.001)
    after = _ids(_recs(shop, user))
    assert after.index(low) < before.index(low) and (top not in after or after.index(top) > 0)


def test_a_rule_in_force_later_changes_nothing_until_its_window_opens(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = _user(artifact)
    first = _ids(_recs(shop, user))[0]
    _add(shop, action="hide", item_ids=[first], starts_at=_later(1.5), ends_at=_later(3.5))
    assert _ids(_recs(shop, user))[0] == first
    time.sleep(2.0)
    assert first not in _ids(_recs(shop, user))  # opened: a new cache key, not the stored answer
    time.sleep(2.0)
    assert _ids(_recs(shop, user))[0] == first  # closed again


def test_a_cached_answer_from_before_a_rule_is_never_served(
    shop: TestClient, artifact: ModelArtifact
) -> None:
    user = _user(artifact)
    first = _ids(_recs(shop, user))[0]
    again = shop.get(f"/v1/users/{user}/recommendations", params={"n": 10})
    assert again.headers["x-cache"] == "hit"
    rule = _add(shop, action="hide", item_ids=[first])
    assert first not in _ids(_recs(shop, user))
    assert shop.delete(f"/v1/admin/rules/{rule['id']}").status_code == 204
    assert _ids(_recs(shop, user))[0] == first
    assert shop.get("/v1/admin/rules").json()["rules"] == []


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"action": "hide"}, "item_ids"),
        ({"action": "hide", "item_ids": ["no-such-item"]}, "item_ids"),
        ({"action": "hide", "category": "no-such-category"}, "category"),
        ({"action": "pin", "item_ids": ["{item}"], "position": 101}, "position"),
        ({"action": "pin", "item_ids": ["{item}"]}, "position"),
        ({"action": "boost", "item_ids": ["{item}"], "factor": 0.5}, "factor"),
        ({"action": "hide", "item_ids": ["{item}"], "starts_at": "2030-01-02T00:00:00Z",
          "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
        ({"action": "hide", "item_ids": ["{item}"], "placements": ["Home Page"]}, "placements.0"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_422_naming_the_field(
    shop: TestClient, artifact: ModelArtifact, rule: dict[str, Any], field: str
) -> None:
    item = str(artifact.items.ids[0])
    body = {
        k: [v.format(item=item) for v in val] if isinstance(val, list) else val for k, val in rule.items()
    }
    answer = shop.post("/v1/admin/rules", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
    assert shop.get("/v1/admin/rules").json()["rules"] == []


def test_deleting_an_unknown_rule_is_404(shop: TestClient) -> None:
    answer = shop.delete("/v1/admin/rules/r000000000000")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_rule"


def test_marketer_and_admin_keys_edit_rules_and_a_storefront_key_may_not(
    artifact_dir: Path, artifact: ModelArtifact, tmp_path: Path
) -> None:
    settings = Settings(
        model_uri=str(artifact_dir), event_log=tmp_path / "e.jsonl",
        api_keys=("shop",), marketer_keys=("mkt",), admin_keys=("boss",),
    )  # fmt: skip
    rule = {"action": "hide", "item_ids": [str(artifact.items.ids[0])]}
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/admin/rules", json=rule, headers={"X-API-Key": "shop"}).status_code == 403
        assert client.post("/v1/admin/rules", json=rule, headers={"X-API-Key": "mkt"}).status_code == 201
        assert client.post("/v1/admin/rules", json=rule, headers={"X-API-Key": "boss"}).status_code == 201
        assert len(client.get("/v1/admin/rules", headers={"X-API-Key": "mkt"}).json()["rules"]) == 2
        assert client.get("/v1/trending", headers={"X-API-Key": "mkt"}).status_code == 200


def test_rules_survive_a_restart_of_the_service(
    artifact_dir: Path, artifact: ModelArtifact, tmp_path: Path
) -> None:
    settings = Settings(model_uri=str(artifact_dir), event_log=tmp_path / "e.jsonl")
    with TestClient(create_app(settings)) as client:
        rule = _add(client, action="hide", item_ids=[str(artifact.items.ids[0])])
    with TestClient(create_app(settings)) as client:
        assert [r["id"] for r in client.get("/v1/admin/rules").json()["rules"]] == [rule["id"]]
        assert client.get("/readyz").json()["rules"]["rules"] == 1


def test_max_per_category_caps_every_list_endpoint(shop: TestClient, artifact: ModelArtifact) -> None:
    category = dict(zip(artifact.item_meta["item_id"], artifact.item_meta["category"], strict=True))

    def most(items: list[str]) -> int:
        found = [category[i] for i in items if category[i]]
        return max(found.count(c) for c in set(found)) if found else 0

    user = _user(artifact)
    assert most(_ids(_recs(shop, user, n=20, max_per_category=2))) <= 2
    anchor = str(artifact.items.ids[int(artifact.copurchase.item_counts.argmax())])
    body = {"items": [{"item_id": anchor}], "n": 12, "max_per_category": 1}
    assert most(_ids(shop.post("/v1/cart/cross-sell", json=body).json())) <= 1
    similar = shop.get(
        f"/v1/items/{anchor}/similar", params={"kind": "similar", "n": 12, "max_per_category": 1}
    )
    assert most(_ids(similar.json())) <= 1
    session = shop.post(
        "/v1/recommendations", json={"recent_items": [anchor], "n": 10, "max_per_category": 1}
    )
    assert most(_ids(session.json())) <= 1
