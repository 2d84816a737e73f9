"""Precompute fills Redis so the storefront's first request for a known user is already a hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from training.cli import app as cli

pytestmark = pytest.mark.redis


def test_precompute_writes_every_known_user_and_the_service_answers_from_it(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str
) -> None:
    result = CliRunner().invoke(
        cli, ["precompute", "--model-uri", str(artifact_dir), "--redis-url", redis_url]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {len(artifact.users):,} users' recommendations" in result.output
    plain = redis.Redis.from_url(redis_url)
    assert sum(1 for _ in plain.scan_iter(match="orderlift:recs:*", count=1000)) == len(artifact.users)
    plain.close()
    user = str(artifact.users.ids[3])
    with TestClient(create_app(Settings(model_uri=str(artifact_dir), redis_url=redis_url))) as client:
        first = client.get(f"/v1/users/{user}/recommendations")
        assert first.headers["x-cache"] == "hit"
        stored = first.json()
        fresh = client.get(f"/v1/users/{user}/recommendations", params={"n": 10, "explain": True}).json()
        assert [i["item_id"] for i in stored["items"]] == [i["item_id"] for i in fresh["items"]]
        assert stored["source"] == "personalized" and stored["model_version"] == fresh["model_version"]
        client.post(
            "/v1/events", json={"user_id": user, "item_id": stored["items"][0]["item_id"], "type": "cart"}
        )
        after = client.get(f"/v1/users/{user}/recommendations")
        assert after.headers["x-cache"] == "miss"
        assert stored["items"][0]["item_id"] not in json.dumps(after.json()["items"])


def test_m1_precompute_skips_users_with_live_history_instead_of_hiding_it(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str
) -> None:
    user, item = str(artifact.users.ids[5]), str(artifact.items.ids[7])
    settings = Settings(model_uri=str(artifact_dir), redis_url=redis_url)
    with TestClient(create_app(settings)) as client:
        assert (
            client.post("/v1/events", json={"user_id": user, "item_id": item, "type": "purchase"}).status_code
            == 202
        )
    result = CliRunner().invoke(
        cli, ["precompute", "--model-uri", str(artifact_dir), "--redis-url", redis_url]
    )
    assert result.exit_code == 0, result.output
    assert (
        f"wrote {len(artifact.users) - 1:,} users'" in result.output
        and "skipped 1 with live history" in result.output
    )
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"/v1/users/{user}/recommendations")
        assert answer.headers["x-cache"] == "miss" and item not in answer.text


def test_precompute_without_redis_is_a_clear_error(
    artifact_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORDERLIFT_REDIS_URL", raising=False)
    result = CliRunner().invoke(cli, ["precompute", "--model-uri", str(artifact_dir)])
    assert result.exit_code == 2 and "precompute fills Redis" in result.output
