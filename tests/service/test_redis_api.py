"""The service's Redis path against real servers: keys, TTL, identical bytes, and Redis dying mid-test."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from tests.conftest import without_recommendation_id
from tests.harness import PrivateRedis, free_port

pytestmark = pytest.mark.redis


def _wait_for_keys(client: redis.Redis, pattern: str, timeout: float = 2.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = list(client.scan_iter(match=pattern))
        if keys:
            return keys
        time.sleep(0.01)
    return []


def _users(artifact: ModelArtifact, count: int) -> list[str]:
    return [str(u) for u in artifact.users.ids[:count]]


def test_redis_cache_keys_carry_the_model_version_with_a_ttl_and_hits_return_identical_bytes(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str
) -> None:
    settings = Settings(model_uri=str(artifact_dir), redis_url=redis_url, cache_ttl_s=120)
    plain = redis.Redis.from_url(redis_url)
    with TestClient(create_app(settings)) as client:
        user = _users(artifact, 1)[0]
        first = client.get(f"/v1/users/{user}/recommendations", params={"n": 5})
        version = first.json()["model_version"]
        keys = _wait_for_keys(plain, f"orderlift:recs:{version}:default:{user}:*")
        assert len(keys) == 1
        assert 0 < plain.pttl(keys[0]) <= 120_000
        assert plain.get(keys[0]) == first.content
        second = client.get(f"/v1/users/{user}/recommendations", params={"n": 5})
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert without_recommendation_id(second.content) == without_recommendation_id(first.content)
        ready = client.get("/readyz").json()
        assert ready["cache"]["backend"] == "redis" and ready["cache"]["healthy"] is True
    plain.close()


def test_requests_keep_answering_200_while_redis_is_down_and_use_it_again_when_it_returns(
    artifact_dir: Path, artifact: ModelArtifact, throwaway_redis: PrivateRedis
) -> None:
    settings = Settings(
        model_uri=str(artifact_dir),
        redis_url=throwaway_redis.url,
        redis_timeout_s=0.05,
        redis_retry_after_s=0.2,
    )
    users = _users(artifact, 60)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/v1/users/{users[0]}/recommendations").status_code == 200
        throwaway_redis.kill()
        began = time.monotonic()
        statuses = [client.get(f"/v1/users/{u}/recommendations").status_code for u in users[1:41]]
        assert statuses == [200] * 40
        assert time.monotonic() - began < 5.0
        ready = client.get("/readyz").json()
        assert ready["ready"] is True
        assert ready["cache"]["healthy"] is False and ready["cache"]["errors"] >= 1
        cart = {"items": [{"item_id": str(artifact.items.ids[int(np.argmax(artifact.popularity))])}]}
        assert client.post("/v1/cart/cross-sell", json=cart).status_code == 200
        throwaway_redis.start()
        time.sleep(0.3)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            client.get(f"/v1/users/{users[50]}/recommendations")
            if client.get(f"/v1/users/{users[50]}/recommendations").headers["x-cache"] == "hit":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the cache was not used again after Redis came back")
        assert client.get("/readyz").json()["cache"]["healthy"] is True


def test_one_batch_invalidates_every_users_cached_answers_in_redis(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str
) -> None:
    users = _users(artifact, 40)
    with TestClient(create_app(Settings(model_uri=str(artifact_dir), redis_url=redis_url))) as client:
        tops = {}
        for user in users:
            tops[user] = client.get(f"/v1/users/{user}/recommendations", params={"n": 5}).json()["items"][0][
                "item_id"
            ]
        time.sleep(0.2)  # the cache writes run in the background
        assert (
            client.get(f"/v1/users/{users[0]}/recommendations", params={"n": 5}).headers["x-cache"] == "hit"
        )
        events = [{"user_id": u, "item_id": tops[u], "type": "purchase", "order_id": f"o-{u}"} for u in users]
        assert client.post("/v1/events", json=events).status_code == 202
        stale = [
            u
            for u in users
            if tops[u]
            in {
                i["item_id"]
                for i in client.get(f"/v1/users/{u}/recommendations", params={"n": 5}).json()["items"]
            }
        ]
        assert stale == []


def test_m1_an_answer_built_without_live_history_is_not_cached(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # the live history's Redis does not answer
    settings = Settings(model_uri=str(artifact_dir), redis_url=redis_url, events_redis_url=dead)
    user = _users(artifact, 1)[0]
    with TestClient(create_app(settings)) as client:
        answers = [client.get(f"/v1/users/{user}/recommendations", params={"n": 5}) for _ in range(2)]
        time.sleep(0.2)
        third = client.get(f"/v1/users/{user}/recommendations", params={"n": 5})
        assert [a.status_code for a in (*answers, third)] == [200, 200, 200]
        assert [a.headers["x-cache"] for a in (*answers, third)] == ["miss", "miss", "miss"]


def test_a_failing_live_update_still_acknowledges_logged_events(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str
) -> None:
    plain = redis.Redis.from_url(redis_url)
    from service.live import live_keys

    views = next(k for k in live_keys("broken-user") if "live-view" in k)
    plain.set(views, "not a hash")  # HINCRBYFLOAT on it fails
    item = str(artifact.items.ids[0])  # in the catalog, so it goes to live history
    with TestClient(create_app(Settings(model_uri=str(artifact_dir), redis_url=redis_url))) as client:
        response = client.post("/v1/events", json={"user_id": "broken-user", "item_id": item, "type": "view"})
        assert response.status_code == 202 and response.json()["accepted"] == 1
        assert client.get("/readyz").json()["counters"]["live_update_failed"] == 1
    assert plain.xlen("orderlift:events") == 1
    plain.close()


def test_a_frozen_redis_costs_requests_milliseconds_not_seconds(
    artifact_dir: Path, artifact: ModelArtifact, throwaway_redis: PrivateRedis
) -> None:
    settings = Settings(model_uri=str(artifact_dir), redis_url=throwaway_redis.url, redis_retry_after_s=5.0)
    users = _users(artifact, 30)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/v1/users/{users[0]}/recommendations").status_code == 200
        throwaway_redis.pause()
        try:
            began = time.monotonic()
            statuses = [client.get(f"/v1/users/{u}/recommendations").status_code for u in users[1:]]
            took = time.monotonic() - began
        finally:
            throwaway_redis.resume()
    assert statuses == [200] * 29
    assert took < 3.0, f"29 requests took {took:.1f}s with Redis frozen"


def test_h5_the_event_stream_is_trimmed_by_an_explicit_retention(redis_url: str) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from service.event_log import RedisEventSink

    plain = redis.Redis.from_url(redis_url)
    plain.xadd("orderlift:events", {"e": "{}"}, id="1000-0")  # an event from 1970: past any retention

    async def append() -> None:
        client = aioredis.Redis.from_url(redis_url)
        sink = RedisEventSink(client, retention_days=30)
        await sink.append([{"event_id": "h5-1", "user_id": "u1", "item_id": "i1", "type": "view"}])
        await client.aclose()

    asyncio.run(append())
    entries = plain.xrange("orderlift:events")
    plain.close()
    assert [json.loads(fields[b"e"]).get("event_id") for _, fields in entries] == ["h5-1"]


def test_h5_events_can_live_in_a_redis_apart_from_the_cache(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str
) -> None:
    events_url = redis_url.rsplit("/", 1)[0] + "/13"
    events_db, cache_db = redis.Redis.from_url(events_url), redis.Redis.from_url(redis_url)
    events_db.flushdb()
    settings = Settings(model_uri=str(artifact_dir), redis_url=redis_url, events_redis_url=events_url)
    try:
        with TestClient(create_app(settings)) as client:
            event = {"user_id": "u1", "item_id": str(artifact.items.ids[0]), "type": "view"}
            assert client.post("/v1/events", json=event).status_code == 202
            assert client.get("/v1/users/u1/recommendations").status_code == 200  # cached in redis_url
        assert events_db.xlen("orderlift:events") == 1 and cache_db.xlen("orderlift:events") == 0
        assert any(k.startswith(b"orderlift:recs") for k in cache_db.keys("orderlift:*"))
    finally:
        events_db.flushdb()
        events_db.close()
        cache_db.close()


def test_l12_a_malformed_stream_entry_is_skipped_by_the_report(artifact_dir: Path, redis_url: str) -> None:
    plain = redis.Redis.from_url(redis_url)
    plain.delete("orderlift:events")
    plain.xadd("orderlift:events", {"e": b"not json"})
    plain.xadd("orderlift:events", {"x": b"no e field"})
    event = {"event_id": "l12", "user_id": "u1", "item_id": "i1", "type": "impression", "variant": "default"}
    plain.xadd("orderlift:events", {"e": json.dumps(event)})
    plain.close()
    with TestClient(create_app(Settings(model_uri=str(artifact_dir), redis_url=redis_url))) as client:
        answer = client.get("/v1/experiments/report")
    assert answer.status_code == 200, answer.text
    assert answer.json()["variants"]["default"]["impressions"] == 1


def test_l12_a_report_while_redis_is_down_is_503_naming_the_event_log(artifact_dir: Path) -> None:
    settings = Settings(model_uri=str(artifact_dir), redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/experiments/report")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "event_log_unavailable"


def test_m8_redis_markers_are_scoped_per_user(artifact_dir: Path, redis_url: str) -> None:
    with TestClient(create_app(Settings(model_uri=str(artifact_dir), redis_url=redis_url))) as client:
        first = {"event_id": "e-1", "user_id": "mallory", "item_id": "i1", "type": "view"}
        assert client.post("/v1/events", json=first).json()["accepted"] == 1
        assert client.post("/v1/events", json={**first, "user_id": "alice"}).json()["accepted"] == 1
        assert client.post("/v1/events", json=[first, first]).json()["duplicates"] == 2


def test_m14_a_frozen_events_redis_fails_fast_after_one_timeout(
    artifact_dir: Path, throwaway_redis: PrivateRedis
) -> None:
    settings = Settings(model_uri=str(artifact_dir), redis_url=throwaway_redis.url, redis_retry_after_s=5.0)
    event = {"user_id": "u1", "item_id": "i1", "type": "view"}
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json={**event, "event_id": "m14-0"}).status_code == 202
        throwaway_redis.pause()
        try:
            first = client.post("/v1/events", json={**event, "event_id": "m14-1"})
            began = time.monotonic()
            later = [client.post("/v1/events", json={**event, "event_id": f"m14-{i}"}) for i in range(2, 7)]
            took = time.monotonic() - began
        finally:
            throwaway_redis.resume()
    assert first.status_code == 503 and first.json()["error"]["code"] == "event_log_unavailable"
    assert [r.status_code for r in later] == [503] * 5
    assert took < 1.0, f"5 events took {took:.1f}s with the events Redis frozen"
