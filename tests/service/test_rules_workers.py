"""Rules through HTTP against a real Redis and two workers: every worker obeys an edit within a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from features.artifact import ModelArtifact
from tests.harness import Server

pytestmark = pytest.mark.redis

ASKS = 16  # fresh connections per check: the two workers share the port, so both answer some


def _every_answer(url: str, check: Callable[[dict[str, Any]], bool], path: str, **params: Any) -> bool:
    """Return whether every one of ``ASKS`` answers, each on a new connection, passes ``check``."""
    return all(check(httpx.get(f"{url}{path}", params=params, timeout=5.0).json()) for _ in range(ASKS))


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def _within_a_second(url: str, check: Callable[[dict[str, Any]], bool], path: str, **params: Any) -> float:
    """Return how long after now a round of answers began in which every worker passed ``check``."""
    began = time.monotonic()
    while True:
        asked = time.monotonic()
        if _every_answer(url, check, path, **params):
            return asked - began
        assert asked - began < 3.0, "a worker still answers under the old rules"
        time.sleep(0.05)


def test_every_worker_applies_each_rule_action_window_and_placement_within_a_second(
    artifact_dir: Path, artifact: ModelArtifact, redis_url: str, tmp_path: Path
) -> None:
    env = {"ORDERLIFT_MODEL_URI": str(artifact_dir), "ORDERLIFT_REDIS_URL": redis_url,
           "ORDERLIFT_RELOAD_INTERVAL_S": "0"}  # fmt: skip
    server = Server(env, tmp_path, workers=2).start()
    try:
        url, user = server.url, str(artifact.users.ids[0])
        path = f"/v1/users/{user}/recommendations"
        before = _ids(httpx.get(f"{server.url}{path}", params={"n": 10}).json())
        has = set(artifact.items.ids[artifact.history[0].indices].tolist())
        outsider = next(
            str(i) for i in artifact.items.ids[::-1] if str(i) not in before and str(i) not in has
        )
        waits = []

        def add(**rule: Any) -> str:
            answer = httpx.post(f"{url}/v1/admin/rules", json=rule, timeout=5.0)
            assert answer.status_code == 201, answer.text
            return str(answer.json()["id"])

        pin = add(action="pin", item_ids=[outsider], position=1, placements=["home"])
        waits.append(_within_a_second(url, lambda b: _ids(b)[0] == outsider, path, n=10, placement="home"))
        assert _every_answer(url, lambda b: outsider not in _ids(b), path, n=10)  # other placements: none
        hide = add(action="hide", item_ids=[before[0]])
        waits.append(_within_a_second(url, lambda b: before[0] not in _ids(b) and hide in b["rules_applied"],
                                       path, n=10))  # fmt: skip
        boost = add(action="boost", item_ids=[before[9]], factor=1000.0)
        waits.append(_within_a_second(url, lambda b: _ids(b)[0] == before[9], path, n=10))
        add(action="bury", item_ids=[before[9]], factor=0.000001)
        waits.append(_within_a_second(url, lambda b: _ids(b)[0] != before[9], path, n=10))
        opens = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        add(action="hide", item_ids=[before[1]], starts_at=opens)
        assert _every_answer(url, lambda b: before[1] in _ids(b), path, n=10)  # not yet in force
        time.sleep(2.0)
        waits.append(_within_a_second(url, lambda b: before[1] not in _ids(b), path, n=10))
        for rule in (pin, hide, boost):
            assert httpx.delete(f"{url}/v1/admin/rules/{rule}", timeout=5.0).status_code == 204
        waits.append(_within_a_second(url, lambda b: before[0] in _ids(b), path, n=10))
        listed = httpx.get(f"{url}/v1/admin/rules", timeout=5.0).json()
        assert len(listed["rules"]) == 2 and listed["version"] == 8
        assert max(waits) < 1.0, waits
    finally:
        server.stop()
