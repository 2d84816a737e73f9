"""Every acknowledged event survives a kill -9 of the service (embedded file and Redis stream)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from features.eventlog import read_jsonl
from tests.harness import Server

STREAM = "orderlift:events"


def _send_batches(server: Server, batches: int, size: int = 50) -> set[str]:
    acknowledged: set[str] = set()
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        for b in range(batches):
            events = [
                {"event_id": f"e{b}-{i}", "user_id": f"u{i % 17}", "item_id": f"i{i % 23}", "type": "view"}
                for i in range(size)
            ]
            response = client.post("/v1/events", json=events)
            if response.status_code == 202:
                acknowledged |= {e["event_id"] for e in events}
    return acknowledged


def test_acknowledged_events_survive_a_kill_in_embedded_mode(artifact_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    env = {
        "ORDERLIFT_MODEL_URI": str(artifact_dir),
        "ORDERLIFT_EVENT_LOG": str(log),
        "ORDERLIFT_REDIS_URL": "",
    }
    server = Server(env).start()
    try:
        acknowledged = _send_batches(server, 20)
    finally:
        server.kill()
    assert len(acknowledged) == 1000
    logged = {e["event_id"] for e in read_jsonl(log)[0]}
    assert acknowledged <= logged
    again = Server(env).start()
    try:
        retry = httpx.post(
            f"{again.url}/v1/events",
            json={"event_id": "e0-0", "user_id": "u0", "item_id": "i0", "type": "view"},
        )
        assert retry.json()["duplicates"] == 1
    finally:
        again.kill()


@pytest.fixture
def stream_db(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + "/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.mark.redis
def test_acknowledged_events_survive_a_kill_in_redis_mode(artifact_dir: Path, stream_db: str) -> None:
    env = {"ORDERLIFT_MODEL_URI": str(artifact_dir), "ORDERLIFT_REDIS_URL": stream_db}
    server = Server(env).start()
    try:
        acknowledged = _send_batches(server, 20)
    finally:
        server.kill()
    client = redis.Redis.from_url(stream_db)
    logged = {json.loads(fields[b"e"])["event_id"] for _, fields in client.xrange(STREAM)}
    client.close()
    assert len(acknowledged) == 1000 and acknowledged <= logged


def test_h4_a_torn_tail_is_set_aside_so_the_next_acknowledged_event_is_kept(tmp_path: Path) -> None:
    import asyncio

    from service.event_log import FileEventSink

    log = tmp_path / "events.jsonl"
    good = [{"event_id": f"e{k}", "user_id": "u1", "item_id": "i1", "type": "view"} for k in range(2)]
    torn = '{"event_id": "e2", "user_id": "u1", "it'  # a write cut short by a crash: never acknowledged
    log.write_text("".join(json.dumps(e) + "\n" for e in good) + torn)
    sink = FileEventSink(log)
    fresh = {"event_id": "e3", "user_id": "u2", "item_id": "i2", "type": "purchase"}
    assert asyncio.run(sink.append([fresh])) == [fresh]
    events, bad = read_jsonl(log)
    assert [e["event_id"] for e in events] == ["e0", "e1", "e3"] and bad == 0
    aside = list(tmp_path.glob("events.jsonl.torn-*"))
    assert len(aside) == 1 and aside[0].read_text() == torn
