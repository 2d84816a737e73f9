"""Review findings H3 and H1 (security-2026-12): bodies bounded and keys checked before a body is read."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

LIMIT = 64 * 1024
CHUNK = 16 * 1024


def _call(
    settings: Settings, path: str, chunks: int, length: int | None = None, key: str | None = None
) -> tuple[int, dict[str, Any], int]:
    """POST ``chunks`` chunks of CHUNK bytes straight into the ASGI app; return status, body, bytes read."""
    app = create_app(settings)
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))  # as uvicorn passes a chunked request on
    if key is not None:
        headers.append((b"x-api-key", key.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "state": {}}  # fmt: skip
    given, sent = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal given
        given += 1
        return {"type": "http.request", "body": b"[" * CHUNK, "more_body": given < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:  # started as uvicorn starts it: the lifespan first, then the request
        startup: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        await startup.put({"type": "lifespan.startup"})
        ready = asyncio.Event()

        async def lifespan_send(message: dict[str, Any]) -> None:
            ready.set()

        life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                       startup.get, lifespan_send))  # fmt: skip
        await ready.wait()
        await app(scope, receive, send)
        life.cancel()

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], orjson.loads(body), given * CHUNK


def _settings(**extra: Any) -> Settings:
    return Settings(model_uri=None, max_body_bytes=LIMIT, **extra)


@pytest.mark.parametrize("key", [None, "k1"])
def test_h3_a_body_declared_over_the_limit_gets_413_before_any_of_it_is_read(key: str | None) -> None:
    status, body, read = _call(_settings(api_keys=("k1",)), "/v1/cart/cross-sell", 10_000, 200 << 20, key)
    assert status == 413 and read == 0
    assert body["error"]["code"] == "body_too_large" and body["error"]["field"] == "body"
    assert body["error"]["value"] == LIMIT


@pytest.mark.parametrize("path", ["/v1/cart/cross-sell", "/v1/events", "/v1/recommendations"])
def test_h3_a_chunked_body_stops_being_read_at_the_limit(path: str) -> None:
    status, body, read = _call(_settings(), path, 10_000)
    assert status == 413, body
    assert body["error"]["code"] == "body_too_large"
    assert read <= LIMIT + CHUNK  # 10,000 chunks offered: the read stopped at the limit


def test_h3_a_keyless_request_is_refused_401_before_its_body_is_read() -> None:
    status, body, read = _call(_settings(api_keys=("k1",)), "/v1/events", 10_000)
    assert status == 401 and read == 0
    assert body["error"]["code"] == "unauthorized"


def test_h3_admin_routes_refuse_a_storefront_key_before_reading_the_body() -> None:
    settings = _settings(api_keys=("shop",), admin_keys=("boss",))
    status, body, read = _call(settings, "/v1/admin/reload", 10, key="shop")
    assert status == 403 and read == 0
    assert "admin" in body["error"]["message"]


def test_a_keyless_request_without_a_body_gets_405_for_an_undeclared_method(client: TestClient) -> None:
    settings = _settings(api_keys=("k1",))
    with TestClient(create_app(settings)) as keyed:
        assert (
            keyed.request("TRACE", "/v1/admin/reload").status_code == 405
        )  # routing first: no body to guard
        assert keyed.post("/v1/admin/reload").status_code == 401


def test_a_body_under_the_limit_is_answered_as_before(client: TestClient) -> None:
    items = [{"item_id": f"i{k:04d}", "quantity": 1} for k in range(50)]
    answer = client.post("/v1/cart/cross-sell", json={"items": items, "n": 3})
    assert answer.status_code == 200 and len(answer.json()["items"]) == 3


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).parent / "orderlift"
    return subprocess.run(
        [str(cli), "serve", "--model-uri", "/nonexistent", *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLIFT_")}
    return env | extra


@pytest.mark.parametrize(
    ("args", "extra"),
    [(("--host", "0.0.0.0"), {}), (("--host", "127.0.0.1"), {"ORDERLIFT_ENVIRONMENT": "production"})],
)
def test_h1_serve_refuses_to_run_open_when_it_is_deployed(
    args: tuple[str, ...], extra: dict[str, str]
) -> None:
    done = _serve(*args, "--port", "1", env=_env(**extra))
    assert done.returncode == 2
    assert "ORDERLIFT_API_KEYS" in done.stderr and "--allow-open" in done.stderr
    assert "Traceback" not in done.stderr
