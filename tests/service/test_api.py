"""Every endpoint over HTTP on a small trained artifact: shapes, semantics, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from tests.conftest import without_recommendation_id


def _known_user(artifact: ModelArtifact, min_items: int = 5) -> tuple[str, set[str]]:
    counts = np.diff(artifact.history.indptr)
    row = int(np.flatnonzero(counts >= min_items)[0])
    bought = set(artifact.items.ids[artifact.history[row].indices].tolist())
    return str(artifact.users.ids[row]), bought


def test_user_recommendations_leave_out_what_the_user_already_has(
    client: TestClient, artifact: ModelArtifact
) -> None:
    user, bought = _known_user(artifact)
    body = client.get(f"/v1/users/{user}/recommendations", params={"n": 20}).json()
    assert body["source"] == "personalized"
    assert len(body["items"]) == 20
    assert not {i["item_id"] for i in body["items"]} & bought
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["model_version"].startswith("artifact-") and body["variant"] == "default"
    assert body["recommendation_id"].startswith("default.-.-.") and len(body["recommendation_id"]) == 44
    assert {"item_id", "name", "category", "price", "score"} <= set(body["items"][0])


def test_filters_are_obeyed(client: TestClient, artifact: ModelArtifact) -> None:
    user, _ = _known_user(artifact)
    category = str(artifact.item_meta["category"].value_counts().index[0])
    params: dict[str, object] = {"n": 10, "category": category, "min_price": 5, "max_price": 200}
    items = client.get(f"/v1/users/{user}/recommendations", params=params).json()["items"]
    assert items and all(i["category"] == category and 5 <= i["price"] <= 200 for i in items)
    first = client.get(f"/v1/users/{user}/recommendations", params={"n": 3}).json()["items"]
    excluded = [i["item_id"] for i in first]
    again = client.get(f"/v1/users/{user}/recommendations", params={"n": 3, "exclude": ",".join(excluded)})
    assert not {i["item_id"] for i in again.json()["items"]} & set(excluded)
    stock = artifact.item_meta.set_index("item_id")["in_stock"]
    in_stock = client.get(f"/v1/users/{user}/recommendations", params={"n": 30, "in_stock_only": True}).json()
    assert all(bool(stock[i["item_id"]]) for i in in_stock["items"])


def test_an_unknown_user_gets_the_trending_items_or_when_too_few_trend_the_popular_list(
    artifact_dir: Path, artifact: ModelArtifact, tmp_path: Path
) -> None:
    from features.trending import trend_scores

    assert artifact.trend is not None
    score, _, _ = trend_scores(artifact.trend.counts, artifact.trend.counts.shape[1] - 1)
    expected = artifact.items.ids[np.lexsort((np.arange(len(score)), -score))[:5]].tolist()
    with TestClient(
        create_app(Settings(model_uri=str(artifact_dir), event_log=tmp_path / "e.jsonl"))
    ) as fresh:
        trending = fresh.get("/v1/users/never-seen/recommendations", params={"n": 5}).json()
        many = int(np.isfinite(score).sum()) + 1
        body = fresh.get("/v1/users/never-seen/recommendations", params={"n": many}).json()
    assert trending["source"] == "trending"
    assert [i["item_id"] for i in trending["items"]] == expected
    assert body["source"] == "popular"
    top = artifact.items.ids[np.argsort(-artifact.popularity, kind="stable")[:5]].tolist()
    assert [i["item_id"] for i in body["items"]][:5] == top


def test_explain_names_history_items_behind_each_recommendation(
    client: TestClient, artifact: ModelArtifact
) -> None:
    user, bought = _known_user(artifact)
    items = client.get(f"/v1/users/{user}/recommendations", params={"n": 3, "explain": True}).json()["items"]
    because = [b for item in items for b in item["because"]]
    assert because and {b["item_id"] for b in because} <= bought
    assert all(b["contribution"] > 0 for b in because)


def test_session_fold_in_changes_results_and_lists_unknown_items(
    client: TestClient, artifact: ModelArtifact
) -> None:
    phones = artifact.item_meta[artifact.item_meta["category"] == "phones"]["item_id"].tolist()[:3]
    books = artifact.item_meta[artifact.item_meta["category"] == "books"]["item_id"].tolist()[:3]
    a = client.post("/v1/recommendations", json={"recent_items": [*phones, "nope"], "n": 5}).json()
    b = client.post("/v1/recommendations", json={"recent_items": books, "n": 5}).json()
    assert a["source"] == b["source"] == "session"
    assert a["unknown_items"] == ["nope"]
    assert {i["item_id"] for i in a["items"]} != {i["item_id"] for i in b["items"]}
    assert not {i["item_id"] for i in a["items"]} & set(phones)
    empty = client.post("/v1/recommendations", json={"recent_items": [], "n": 5}).json()
    assert empty["source"] == "trending"  # nothing known: what trends (the popular list when too few do)


def test_similar_items_carry_the_statistics_behind_them(client: TestClient, artifact: ModelArtifact) -> None:
    row = int(np.argmax(artifact.copurchase.item_counts))
    item = str(artifact.items.ids[row])
    body = client.get(f"/v1/items/{item}/similar", params={"n": 5, "kind": "also_bought"}).json()
    assert body["item"]["item_id"] == item and body["items"]
    first = body["items"][0]
    partner = artifact.items.get(first["item_id"])
    assert first["co_count"] == int(artifact.copurchase.pair_counts[row, partner])
    assert first["confidence"] == pytest.approx(
        first["co_count"] / artifact.copurchase.item_counts[row], rel=1e-4
    )
    counts = [i["co_count"] for i in body["items"]]
    assert counts == sorted(counts, reverse=True)
    for kind, stat in (("also_viewed", "lift"), ("similar", "similarity")):
        items = client.get(f"/v1/items/{item}/similar", params={"n": 3, "kind": kind}).json()["items"]
        assert items and all(i[stat] is not None for i in items)


def test_an_unknown_item_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/v1/items/ghost/similar")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "unknown_item",
        "message": "item 'ghost' is not in the model",
        "field": "item_id",
        "value": "ghost",
    }


def test_cross_sell_excludes_the_cart_and_ranks_by_its_score(
    client: TestClient, artifact: ModelArtifact
) -> None:
    row = int(np.argmax(artifact.copurchase.item_counts))
    item = str(artifact.items.ids[row])
    body = client.post(
        "/v1/cart/cross-sell", json={"items": [{"item_id": item, "quantity": 2}, {"item_id": "nope"}], "n": 8}
    ).json()
    assert body["unknown_items"] == ["nope"] and body["cart_items"] == [item]
    ids = [s["item_id"] for s in body["items"]]
    assert item not in ids and len(ids) == 8
    ranks = [s["rank_score"] for s in body["items"]]
    assert ranks == sorted(ranks, reverse=True)
    top = body["items"][0]
    assert top["expected_value"] == pytest.approx(top["probability"] * top["price"], rel=1e-3)
    assert top["reason"].startswith("often bought with ")
    assert {"support", "confidence", "lift"} <= set(top)
    by_value = client.post(
        "/v1/cart/cross-sell", json={"items": [{"item_id": item}], "n": 8, "rank_by": "expected_value"}
    ).json()["items"]
    values = [s["expected_value"] for s in by_value]
    assert values == sorted(values, reverse=True)


def test_cross_sell_leaves_out_substitutes_unless_asked(client: TestClient, artifact: ModelArtifact) -> None:
    from service.crosssell import CrossSeller
    from service.loading import load
    from service.scorer import Scorer

    seller = CrossSeller(Scorer(load(str(artifact.path), ""), Settings()))
    rows = np.arange(len(artifact.items))
    subs_per_item = [(r, seller.substitutes(np.array([r]))) for r in rows[:300]]
    row, subs = max(subs_per_item, key=lambda rs: len(rs[1]))
    assert len(subs), "the synthetic store should have co-viewed substitutes"
    item = str(artifact.items.ids[row])
    cart = {"items": [{"item_id": item}], "n": 100}
    plain = client.post("/v1/cart/cross-sell", json=cart).json()
    assert plain["substitutes_left_out"] == len(subs)
    assert not {s["item_id"] for s in plain["items"]} & set(artifact.items.ids[subs].tolist())
    allowed = client.post("/v1/cart/cross-sell", json={**cart, "include_substitutes": True}).json()
    assert allowed["substitutes_left_out"] == 0


def test_cross_sell_blends_in_a_known_users_taste(client: TestClient, artifact: ModelArtifact) -> None:
    user, _ = _known_user(artifact)
    item = str(artifact.items.ids[int(np.argmax(artifact.copurchase.item_counts))])
    body = client.post("/v1/cart/cross-sell", json={"items": [{"item_id": item}], "user_id": user}).json()
    assert body["personalized"] is True


def test_a_wholesale_cart_of_1500_lines_is_answered(client: TestClient, artifact: ModelArtifact) -> None:
    known = [{"item_id": str(i), "quantity": 12} for i in artifact.items.ids[:150]]
    new = [{"item_id": f"new-{k}"} for k in range(1_350)]  # lines the model has not seen count too
    response = client.post("/v1/cart/cross-sell", json={"items": known + new, "n": 10})
    assert response.status_code == 200
    body = response.json()
    assert len(body["cart_items"]) == 150 and len(body["unknown_items"]) == 1_350
    assert not {s["item_id"] for s in body["items"]} & {line["item_id"] for line in known}
    assert body["cart_model"] == artifact.manifest.crosssell.kind


def test_a_cart_over_the_configured_limit_is_422_naming_the_limit(artifact_dir: Path) -> None:
    settings = Settings(model_uri=str(artifact_dir), max_cart_items=3)
    with TestClient(create_app(settings)) as small:
        lines = [{"item_id": f"i{k}"} for k in range(4)]
        response = small.post("/v1/cart/cross-sell", json={"items": lines})
        again = small.post("/v1/cart/cross-sell", json={"items": lines[:3] + lines[:1]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "items" and error["value"] == 4
    assert "at most 3" in error["message"] and "ORDERLIFT_MAX_CART_ITEMS" in error["message"]
    assert again.status_code == 200  # a repeated line is one item


def test_carts_that_differ_only_in_how_ids_join_never_share_an_answer(
    client: TestClient, artifact: ModelArtifact
) -> None:
    a, b = (str(i) for i in artifact.items.ids[:2])
    joined = client.post("/v1/cart/cross-sell", json={"items": [{"item_id": f"{a}|{b}"}]}).json()
    real = client.post("/v1/cart/cross-sell", json={"items": [{"item_id": a}, {"item_id": b}]}).json()
    assert joined["cart_items"] == [] and real["cart_items"] == sorted([a, b])


def test_bundles_are_sorted_by_expected_revenue_and_export_as_csv(client: TestClient) -> None:
    answer = client.get("/v1/bundles", params={"n": 5, "min_lift": 1.0})
    body = answer.json()
    assert answer.headers["x-model-version"] == body["model_version"]  # the access log reads it
    revenue = [b["expected_revenue"] for b in body["bundles"]]
    assert body["bundles"] and revenue == sorted(revenue, reverse=True)
    first = body["bundles"][0]
    assert len(first["items"]) == 2 and first["lift"] >= 1.0 and first["orders_with_bundle"] >= 3
    assert 5.0 <= first["suggested_discount_pct"] <= 20.0
    triples = client.get("/v1/bundles", params={"n": 3, "size": 3, "min_lift": 1.0, "min_orders": 2}).json()
    assert all(len(b["items"]) == 3 for b in triples["bundles"])
    csv = client.get("/v1/bundles", params={"n": 5, "min_lift": 1.0, "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert csv.text.splitlines()[0].startswith("item_ids,item_names,prices,orders_with_bundle")
    assert len(csv.text.strip().splitlines()) == 1 + len(body["bundles"])


def test_model_info_and_health(client: TestClient) -> None:
    info = client.get("/v1/model").json()
    assert info["model"]["kind"] == "als" and info["data_fingerprint"] == "test"
    assert "ndcg_at_10" in info["metrics"]["model"]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["cache"]["backend"] == "memory"


def test_a_repeated_request_is_a_cache_hit_with_identical_bytes(
    client: TestClient, artifact: ModelArtifact
) -> None:
    user, _ = _known_user(artifact)
    first = client.get(f"/v1/users/{user}/recommendations", params={"n": 7})
    second = client.get(f"/v1/users/{user}/recommendations", params={"n": 7})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert without_recommendation_id(first.content) == without_recommendation_id(second.content)


@pytest.mark.parametrize(
    ("method", "url", "payload", "field"),
    [
        ("get", "/v1/users/u1/recommendations?n=0", None, "n"),
        ("get", "/v1/users/u1/recommendations?n=101", None, "n"),
        ("get", "/v1/users/u1/recommendations?min_price=-1", None, "min_price"),
        ("get", "/v1/items/i1/similar?kind=weird", None, "kind"),
        ("get", "/v1/bundles?size=4", None, "size"),
        ("post", "/v1/cart/cross-sell", {"items": []}, "items"),
        ("post", "/v1/cart/cross-sell", {"items": [{"item_id": "a", "quantity": 0}]}, "items.0.quantity"),
        ("post", "/v1/cart/cross-sell", {"items": [{"item_id": "a"}], "n": "lots"}, "n"),
        ("post", "/v1/recommendations", {"recent_items": "a", "n": 5}, "recent_items"),
        ("post", "/v1/recommendations", {"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_422_naming_the_field_and_value(
    client: TestClient, method: str, url: str, payload: object, field: str
) -> None:
    response = getattr(client, method)(url, **({"json": payload} if payload is not None else {}))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["field"] == field
    assert field in error["message"]


def test_a_malformed_body_is_422_not_500(client: TestClient) -> None:
    response = client.post(
        "/v1/cart/cross-sell", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_without_a_model_v1_is_503_and_readyz_says_why(tmp_path: Path) -> None:
    app = create_app(Settings(model_uri=str(tmp_path / "missing")))
    with TestClient(app) as c:
        response = c.get("/v1/users/u1/recommendations")
        assert response.status_code == 503
        assert "no such artifact directory" in response.json()["error"]["message"]
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "no such artifact directory" in ready.json()["model_error"]
        assert c.get("/healthz").status_code == 200


def test_api_keys_guard_v1_but_not_health(artifact_dir: Path) -> None:
    app = create_app(Settings(model_uri=str(artifact_dir), api_keys=("secret-1", "secret-2")))
    with TestClient(app) as c:
        missing = c.get("/v1/model")
        assert missing.status_code == 401 and "X-API-Key" in missing.json()["error"]["message"]
        assert c.get("/v1/model", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/v1/model", headers={"X-API-Key": "secret-2"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_a_body_that_is_not_utf8_json_is_422_and_a_wrong_method_is_405_with_allow(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "body"
    wrong = client.request("TRACE", "/healthz")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"


def test_m2_session_ids_holding_the_old_separator_do_not_share_a_cache_entry(
    client: TestClient, artifact: ModelArtifact
) -> None:
    a, b = (str(i) for i in artifact.items.ids[40:42])
    joined = client.post("/v1/recommendations", json={"recent_items": [f"{a}|{b}"], "n": 7})
    split = client.post("/v1/recommendations", json={"recent_items": [a, b], "n": 7})
    assert joined.status_code == split.status_code == 200
    assert split.headers["x-cache"] == "miss"  # was a hit: both keys hashed "a|b"
    assert split.json()["source"] != joined.json()["source"] or split.json() != joined.json()


def test_m2_the_user_id_dash_does_not_share_the_anonymous_cache_entry(
    client: TestClient, artifact: ModelArtifact
) -> None:
    cart = {"items": [{"item_id": str(i)} for i in artifact.items.ids[50:52]], "n": 6}
    dash = client.post("/v1/cart/cross-sell", json={**cart, "user_id": "-"})
    anonymous = client.post("/v1/cart/cross-sell", json=cart)
    assert dash.status_code == anonymous.status_code == 200
    assert anonymous.headers["x-cache"] == "miss"  # was a hit: "-" stood for "no user"
