"""Live events: validation per event, idempotency, the effect on the next request, attribution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from features.eventlog import read_jsonl
from features.schema import LIVE_WEIGHTS
from service.app import create_app
from service.config import Settings


@pytest.fixture
def live(artifact_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(model_uri=str(artifact_dir), event_log=tmp_path / "events.jsonl")
    with TestClient(create_app(settings)) as client:
        yield client


def _user(artifact: ModelArtifact) -> str:
    counts = np.diff(artifact.history.indptr)
    return str(artifact.users.ids[int(np.flatnonzero(counts >= 3)[0])])


def test_a_batch_is_validated_event_by_event(live: TestClient, tmp_path: Path) -> None:
    batch = [
        {"event_id": "a", "user_id": "u1", "item_id": "i1", "type": "view"},
        {"event_id": "b", "user_id": "u1", "item_id": "i1", "type": "teleport"},
        {"event_id": "c", "user_id": "", "item_id": "i1", "type": "cart", "quantity": -2},
        {
            "event_id": "d",
            "user_id": "u1",
            "item_id": "i2",
            "type": "purchase",
            "order_id": "o1",
            "price": 9.5,
        },
    ]
    response = live.post("/v1/events", json=batch)
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (2, 2, 0)
    fields = {(e["index"], e["field"]) for e in body["errors"]}
    assert fields == {(1, "type"), (2, "user_id"), (2, "quantity")}
    logged, _ = read_jsonl(tmp_path / "events.jsonl")
    assert [e["event_id"] for e in logged] == ["a", "d"]
    assert logged[1]["price"] == 9.5 and logged[1]["timestamp"].endswith("+00:00")


def test_a_single_event_object_is_accepted_and_nothing_valid_is_422(live: TestClient) -> None:
    one = live.post("/v1/events", json={"user_id": "u9", "item_id": "i9", "type": "click"})
    assert one.status_code == 202 and one.json()["accepted"] == 1
    bad = live.post("/v1/events", json=[{"user_id": "u9"}])
    assert bad.status_code == 422 and bad.json()["rejected"] == 1
    too_many = live.post("/v1/events", json=[{"user_id": "u", "item_id": "i", "type": "view"}] * 1001)
    assert too_many.status_code == 422 and "at most 1000" in too_many.json()["error"]["message"]
    not_json = live.post("/v1/events", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 422


def test_retries_with_the_same_event_id_are_logged_once(live: TestClient, tmp_path: Path) -> None:
    event = {"event_id": "once", "user_id": "u1", "item_id": "i1", "type": "purchase", "order_id": "o1"}
    first = live.post("/v1/events", json=[event, event]).json()
    again = live.post("/v1/events", json=event).json()
    assert (first["accepted"], first["duplicates"], again["accepted"], again["duplicates"]) == (1, 1, 0, 1)
    assert len(read_jsonl(tmp_path / "events.jsonl")[0]) == 1


def test_a_purchase_leaves_the_users_recommendations_at_once(
    live: TestClient, artifact: ModelArtifact
) -> None:
    user = _user(artifact)
    url = f"/v1/users/{user}/recommendations"
    before = live.get(url, params={"n": 5}).json()["items"]
    assert live.get(url, params={"n": 5}).headers["x-cache"] == "hit"
    bought = [before[0]["item_id"], before[1]["item_id"]]
    events = [
        {"user_id": user, "item_id": bought[0], "type": "purchase", "order_id": "o-live"},
        {"user_id": user, "item_id": bought[1], "type": "cart"},
    ]
    assert live.post("/v1/events", json=events).status_code == 202
    after = live.get(url, params={"n": 5})
    assert after.headers["x-cache"] == "miss"
    ids = [i["item_id"] for i in after.json()["items"]]
    assert not set(bought) & set(ids)
    assert ids[:3] == [i["item_id"] for i in before[2:5]]


def test_an_unknown_user_with_live_events_gets_fold_in_recommendations(
    live: TestClient, artifact: ModelArtifact
) -> None:
    url = "/v1/users/brand-new-shopper/recommendations"
    assert live.get(url).json()["source"] == "trending"  # nothing known yet
    phones = artifact.item_meta[artifact.item_meta["category"] == "phones"]["item_id"].tolist()[:2]
    events = [{"user_id": "brand-new-shopper", "item_id": p, "type": "view"} for p in phones]
    live.post("/v1/events", json=events)
    body = live.get(url).json()
    assert body["source"] == "live"
    assert not {i["item_id"] for i in body["items"]} & set(phones)


def test_events_with_a_recommendation_id_are_attributed_to_its_variant(
    live: TestClient, artifact: ModelArtifact
) -> None:
    user = _user(artifact)
    rec = live.get(f"/v1/users/{user}/recommendations", params={"n": 3}).json()
    rid, item = rec["recommendation_id"], rec["items"][0]["item_id"]
    assert rid.startswith(rec["variant"] + ".")
    events = [
        {"user_id": user, "item_id": item, "type": "impression", "recommendation_id": rid},
        {"user_id": user, "item_id": item, "type": "impression", "recommendation_id": rid},
        {"user_id": user, "item_id": item, "type": "click", "recommendation_id": rid},
        {"user_id": user, "item_id": item, "type": "cart", "recommendation_id": rid},
        {"user_id": user, "item_id": item, "type": "purchase", "order_id": "o7", "quantity": 2, "price": 10.0,
         "recommendation_id": rid},
        {"user_id": "someone", "item_id": item, "type": "purchase", "order_id": "o8", "price": 99.0},
    ]  # fmt: skip
    live.post("/v1/events", json=events)
    report = live.get("/v1/experiments/report").json()
    arm = report["variants"][rec["variant"]]
    assert report["control"] == rec["variant"] and report["events_ignored"] == 1
    assert (arm["impressions"], arm["clicks"], arm["add_to_carts"], arm["orders"]) == (2, 1, 1, 1)
    assert arm["ctr"] == 0.5 and arm["revenue"] == 20.0 and arm["aov"] == 20.0
    assert arm["revenue_per_1000_impressions"] == 10_000.0 and arm["conversion_rate"] == 1.0


def test_a_numeric_timestamp_is_rejected_naming_the_field(live: TestClient) -> None:
    event = {"user_id": "u1", "item_id": "i1", "type": "cart", "timestamp": 0}
    body = live.post("/v1/events", json=[event]).json()
    assert body["accepted"] == 0 and body["rejected"] == 1
    assert body["errors"][0]["field"] == "timestamp"


@pytest.mark.parametrize(
    "stamp",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00-05:00", "9000-01-01T00:00:00Z", "2001-01-01T00:00:00Z"],
)
def test_m7_a_timestamp_out_of_range_is_clamped_and_counted_not_a_500(
    live: TestClient, stamp: str, tmp_path: Path
) -> None:
    batch = [
        {
            "event_id": f"m7-{stamp}",
            "user_id": "u-m7",
            "item_id": "i0001",
            "type": "view",
            "timestamp": stamp,
        },
        {"user_id": "u-m7", "item_id": "i0002", "type": "view"},
    ]
    answer = live.post("/v1/events", json=batch)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["accepted"], body["rejected"], body["clamped"]) == (2, 0, 1)
    logged = {e["event_id"]: e for e in read_jsonl(live.app.state.orderlift.settings.event_log)[0]}  # type: ignore[attr-defined]
    when = datetime.fromisoformat(logged[f"m7-{stamp}"]["timestamp"])
    assert abs((datetime.now(UTC) - when).days) <= 30


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_h9_a_users_live_history_is_capped(backend: str, request: pytest.FixtureRequest) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from service.live import LIVE_MAX_ITEMS, LiveStore

    async def scenario() -> int:
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_url")) if backend == "redis" else None
        store = LiveStore(client, timeout_s=2.0)
        events = [
            {"user_id": "u-h9", "item_id": f"i{k}", "type": "view"} for k in range(LIVE_MAX_ITEMS + 300)
        ]
        await store.record(events)
        await store.record(
            [{"user_id": "u-h9", "item_id": "i0", "type": "purchase"}]
        )  # known items still grow
        live = await store.get("u-h9")
        assert live.weights(LIVE_WEIGHTS)["i0"] == 11.0 and "i0" in live.owned
        if client is not None:
            await client.aclose()
        return len(live.weights(LIVE_WEIGHTS))

    assert asyncio.run(scenario()) == LIVE_MAX_ITEMS


def test_h9_events_for_items_outside_the_catalog_are_logged_but_not_live(
    live: TestClient, artifact: ModelArtifact
) -> None:
    known = str(artifact.items.ids[0])
    batch = [{"user_id": "u-h9b", "item_id": f"not-an-item-{k}", "type": "view"} for k in range(5)]
    batch.append({"user_id": "u-h9b", "item_id": known, "type": "view"})
    assert live.post("/v1/events", json=batch).json()["accepted"] == 6
    state = live.app.state.orderlift  # type: ignore[attr-defined]
    history = live.portal.call(state.live.get, "u-h9b")  # type: ignore[union-attr]
    assert set(history.weights(LIVE_WEIGHTS)) == {known}


def test_m3_one_users_broken_live_key_does_not_turn_live_history_off_for_everyone(redis_url: str) -> None:
    import asyncio

    import redis
    import redis.asyncio as aioredis

    from service.live import LiveStore

    plain = redis.Redis.from_url(redis_url)
    plain.set("orderlift:live:u-bad", "not a hash")  # HGETALL on it fails: that user's problem only

    async def scenario() -> tuple[dict[str, float], dict[str, float]]:
        client = aioredis.Redis.from_url(redis_url)
        store = LiveStore(client, timeout_s=2.0, retry_after_s=60.0)
        await store.record([{"user_id": "u-good", "item_id": "i1", "type": "cart"}])
        bad, good = await store.get("u-bad"), await store.get("u-good")
        await client.aclose()
        return bad.weights(LIVE_WEIGHTS), good.weights(LIVE_WEIGHTS)

    bad, good = asyncio.run(scenario())
    plain.close()
    assert bad == {} and good == {"i1": 4.0}  # was {}: the bad key paused live history for 60 s


def test_h8_a_report_reads_only_the_events_logged_since_the_last_one(
    live: TestClient, artifact: ModelArtifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = _user(artifact)
    rec = live.get(f"/v1/users/{user}/recommendations", params={"n": 3}).json()
    rid, item = rec["recommendation_id"], rec["items"][0]["item_id"]
    impression = {"user_id": user, "item_id": item, "type": "impression", "recommendation_id": rid}
    live.post("/v1/events", json=[impression, {**impression, "type": "click"}])
    assert live.get("/v1/experiments/report").json()["variants"][rec["variant"]]["impressions"] == 1
    sink = live.app.state.orderlift.sink  # type: ignore[attr-defined]

    def refuse() -> None:
        raise AssertionError("the report scanned the whole log again")

    monkeypatch.setattr(sink, "read_all", refuse)
    live.post("/v1/events", json=impression)
    arm = live.get("/v1/experiments/report").json()["variants"][rec["variant"]]
    assert (arm["impressions"], arm["clicks"]) == (2, 1)


def test_m8_an_event_id_taken_by_one_user_leaves_another_users_event_new(live: TestClient) -> None:
    first = {"event_id": "e-1", "user_id": "mallory", "item_id": "i1", "type": "view"}
    assert live.post("/v1/events", json=first).json()["accepted"] == 1
    body = live.post("/v1/events", json={**first, "user_id": "alice"}).json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert live.post("/v1/events", json=first).json()["duplicates"] == 1  # a retry is still one event


def test_m8_event_ids_can_be_required_and_a_missing_one_is_named(artifact_dir: Path, tmp_path: Path) -> None:
    settings = Settings(model_uri=str(artifact_dir), event_log=tmp_path / "e.jsonl", event_id_required=True)
    with TestClient(create_app(settings)) as client:
        batch = [
            {"user_id": "u1", "item_id": "i1", "type": "view"},
            {"event_id": "x1", "user_id": "u1", "item_id": "i1", "type": "view"},
        ]
        body = client.post("/v1/events", json=batch).json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "event_id")]


def test_m14_a_large_batch_is_validated_off_the_event_loop(
    live: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import service.routes.events as route

    on_loop: list[bool] = []
    original = route.validate_events

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return original(*args, **kwargs)

    monkeypatch.setattr(route, "validate_events", spy)
    batch = [
        {"event_id": f"m14-{i}", "user_id": f"u{i}", "item_id": "i1", "type": "view"} for i in range(500)
    ]
    assert live.post("/v1/events", json=batch).json()["accepted"] == 500
    assert on_loop == [False]


def test_l3_events_sent_as_text_plain_are_refused_naming_the_content_type(live: TestClient) -> None:
    event = b'{"user_id": "u1", "item_id": "i1", "type": "view"}'
    answer = live.post("/v1/events", content=event, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert answer.json()["error"]["field"] == "content-type"
    assert answer.json()["error"]["value"] == "text/plain"


def test_live_history_is_weighted_with_the_weights_the_model_was_trained_with(
    artifact_dir: Path, artifact: ModelArtifact, tmp_path: Path
) -> None:
    import json
    import shutil

    from service.live import LiveHistory
    from service.loading import load
    from service.scorer import Scorer

    copy = Path(shutil.copytree(artifact_dir, tmp_path / "weighted"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["weights"] = {"view": 2.0, "cart": 3.0, "purchase": 7.0}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    scorer = Scorer(load(str(copy), ""), Settings(model_uri=str(copy)))
    a, b = str(artifact.items.ids[0]), str(artifact.items.ids[1])
    live = LiveHistory({"view": {a: 1.0}, "click": {a: 1.0}, "purchase": {b: 2.0}})
    row = scorer._live_row(live)
    assert dict(zip(row.indices.tolist(), row.data.tolist(), strict=True)) == {0: 4.0, 1: 14.0}
    assert scorer.session_weight == 3.0
