"""The answer functions: shared popular answers for strangers, one computation per concurrent miss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings


def test_m4_unknown_users_without_history_share_one_cached_cold_answer(artifact_dir: Path) -> None:
    with TestClient(create_app(Settings(model_uri=str(artifact_dir)))) as client:
        first = client.get("/v1/users/stranger-1/recommendations", params={"n": 5})
        second = client.get("/v1/users/stranger-2/recommendations", params={"n": 5})
        entries = len(client.app.state.orderlift.cache)  # type: ignore[attr-defined]
        for i in range(3, 50):
            client.get(f"/v1/users/stranger-{i}/recommendations", params={"n": 5})
        assert len(client.app.state.orderlift.cache._entries) == entries  # type: ignore[attr-defined]
    assert first.json()["source"] == second.json()["source"] == "trending"
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.json()["items"] == second.json()["items"]


def test_m5_concurrent_misses_of_one_key_compute_it_once(artifact_dir: Path, artifact: ModelArtifact) -> None:
    import asyncio
    import threading

    import httpx

    from service.scorer import Scorer

    calls: list[str] = []
    gate = threading.Event()
    original = Scorer.for_user

    def slow(self: Scorer, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]))
        gate.wait(2.0)
        return original(self, *args, **kwargs)

    user = str(artifact.users.ids[0])
    app = create_app(Settings(model_uri=str(artifact_dir)))

    async def burst() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            Scorer.for_user = slow  # type: ignore[method-assign]
            try:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    url = f"/v1/users/{user}/recommendations"
                    tasks = [asyncio.create_task(client.get(url)) for _ in range(8)]
                    await asyncio.sleep(0.3)
                    gate.set()
                    return await asyncio.gather(*tasks)
            finally:
                Scorer.for_user = original  # type: ignore[method-assign]

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 8
    assert calls == [user]
    assert sorted(a.headers["x-cache"] for a in answers) == ["miss"] + ["shared"] * 7
    assert len({a.json()["recommendation_id"] for a in answers}) == 8  # L9: one id per response


def test_l9_every_response_gets_its_own_recommendation_id(
    artifact_dir: Path, artifact: ModelArtifact
) -> None:
    url = f"/v1/users/{artifact.users.ids[0]}/recommendations"
    with TestClient(create_app(Settings(model_uri=str(artifact_dir)))) as client:
        answers = [client.get(url) for _ in range(3)]
    assert [a.headers["x-cache"] for a in answers] == ["miss", "hit", "hit"]
    ids = [a.json()["recommendation_id"] for a in answers]
    assert len(set(ids)) == 3
    assert {i.rsplit(".", 1)[0] for i in ids} == {
        f"{answers[0].json()['variant']}.-.-"
    }  # variant.placement.channel
    assert answers[1].json()["items"] == answers[0].json()["items"]
