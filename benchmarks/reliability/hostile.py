"""Hostile input against a running server with keys: every attack gets a clear, bounded refusal.

Usage: ``.venv/bin/python benchmarks/reliability/hostile.py [--out FILE]`` (default
``benchmarks/results/reliability/hostile.json``).

Setup (untimed): a small synthetic store and an ALS model artifact; ``orderlift serve`` on 127.0.0.1 with
``ORDERLIFT_API_KEYS`` and ``ORDERLIFT_ADMIN_KEYS`` set and the embedded event log in a temp dir.
Checks, each passed or not (the script exits 1 when any fails):

1. A body declaring 200 MB, with and without a key: 413 with the JSON error body, answered after
   the headers and 64 KiB were sent (the server did not wait for the rest).
2. A chunked body of up to 8 MiB without a key: 401 before it is read; with a key: 413.
3. Every ``/v1`` route of the OpenAPI schema called without a key, and with a wrong one: 401 with
   the JSON error body, never a 2xx or a 5xx.
4. Ambiguous ids: the cart ``["A|B"]`` and the cart ``["A", "B"]``, and the user ``-`` and no user,
   never share a cached answer.
5. A torn event log: the server is stopped, half a JSON line is appended, the server restarts, an
   event is posted; every line of the log then parses, the torn bytes are set aside, and every
   acknowledged event is in the log.
6. (run last) Redis killed mid-ingest: a second server on a private Redis with AOF ``appendfsync always``;
   batches of 20 events are posted back to back while Redis is killed with SIGKILL and restarted;
   afterwards every event acknowledged with a 202 is in the stream, and no answer was a 500.
7. A key of the wrong role (storefront on the report and reload, marketer on events and
   ``/metrics``): 403 ``forbidden``.
8. A marketer key over its rate (5/minute here): 429 with ``Retry-After``; a storefront key still
   answers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import (
    HOST,
    LOGS,
    RESULTS,
    PrivateRedis,
    Server,
    artifact_ids,
    machine,
    make_artifact,
    make_store,
    setup_logging,
    stamp,
    write_json,
)

logger = logging.getLogger("benchmarks.reliability.hostile")
KEY, ADMIN, MARKETER = "hostile-test-key", "hostile-admin-key", "hostile-marketer-key"
MARKETER_RATE = 5  # per minute, so that check 8 reaches the limit in a few calls


def raw_post(
    port: int, path: str, headers: dict[str, str], chunks: list[bytes], chunked: bool
) -> dict[str, Any]:
    """Send a POST by hand: headers, then ``chunks`` until the server answers; return its answer."""
    began = time.perf_counter()
    sent = 0
    with socket.create_connection((HOST, port), timeout=10) as sock:
        head = [f"POST {path} HTTP/1.1", f"Host: {HOST}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.settimeout(0.05)
        answer = b""
        for chunk in chunks:
            with contextlib.suppress(TimeoutError, BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
                sent += len(chunk)
            except OSError:  # the server answered and closed: that is the point
                break
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) == 0:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
        except OSError:
            pass
    head_text, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_text.split()[1]) if head_text.startswith(b"HTTP/") else 0
    try:
        parsed = json.loads(body.decode(errors="replace").split("\r\n")[-1] or body)
    except ValueError:
        parsed = None
    return {
        "status": status,
        "body": parsed,
        "sent_bytes": sent,
        "seconds": round(time.perf_counter() - began, 3),
    }


def check(name: str, passed: bool, **detail: Any) -> dict[str, Any]:
    """Log and return one check's outcome."""
    logger.info("%-60s %s", name, "yes" if passed else "NO")
    return {"check": name, "passed": bool(passed), **detail}


def bodies(server: Server) -> list[dict[str, Any]]:
    """Checks 1 and 2: declared and chunked bodies over the limit, with and without keys."""
    out = []
    piece = [b"[" * 16384] * 4  # 64 KiB, then the server must have answered
    for key in (None, KEY):
        headers = {"Content-Length": str(200 << 20), **({"X-API-Key": key} if key else {})}
        got = raw_post(server.port, "/v1/cart/cross-sell", headers, piece * 8, chunked=False)
        code = (got["body"] or {}).get("error", {}).get("code")
        out.append(check(f"200 MB declared body, {'with' if key else 'without'} a key: 413 JSON",
                         got["status"] == 413 and code == "body_too_large", **got))  # fmt: skip
    many = [b"[" * 65536] * 128  # up to 8 MiB
    got = raw_post(server.port, "/v1/events", {}, many, chunked=True)
    out.append(check("chunked body without a key: 401 before it is read",
                     got["status"] == 401 and got["sent_bytes"] <= 1 << 20, **got))  # fmt: skip
    got = raw_post(server.port, "/v1/events", {"X-API-Key": KEY}, many, chunked=True)
    out.append(check("chunked body with a key: 413 at the limit", got["status"] == 413, **got))
    return out


def routes(server: Server, client: httpx.Client) -> list[dict[str, Any]]:
    """Check 3: every /v1 route without a key and with a wrong one."""
    schema = client.get("/openapi.json").json()
    bad: list[str] = []
    calls = 0
    for path, methods in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        concrete = path.replace("{user_id}", "u1").replace("{item_id}", "i1")
        for method in methods:
            for headers in ({}, {"X-API-Key": "wrong"}):
                answer = client.request(
                    method.upper(), concrete, headers=headers, json={} if method != "get" else None
                )
                calls += 1
                error = answer.json().get("error", {}) if answer.headers.get("content-type", "").startswith(
                    "application/json") else {}  # fmt: skip
                if answer.status_code != 401 or error.get("code") != "unauthorized":
                    bad.append(f"{method.upper()} {concrete} {headers}: {answer.status_code}")
    return [
        check(f"every /v1 route without a valid key: 401 JSON ({calls} calls)", not bad, calls=calls, bad=bad)
    ]


def ambiguous(server: Server, client: httpx.Client, items: list[str]) -> list[dict[str, Any]]:
    """Check 4: ids that a joined or defaulted key would confuse never share an answer."""
    a, b = items[10], items[11]
    headers = {"X-API-Key": KEY}
    joined = client.post(
        "/v1/cart/cross-sell", headers=headers, json={"items": [{"item_id": f"{a}|{b}"}], "n": 4}
    )
    split = client.post(
        "/v1/cart/cross-sell", headers=headers, json={"items": [{"item_id": a}, {"item_id": b}], "n": 4}
    )
    cart = {"items": [{"item_id": items[12]}], "n": 4}
    dash = client.post("/v1/cart/cross-sell", headers=headers, json={**cart, "user_id": "-"})
    anonymous = client.post("/v1/cart/cross-sell", headers=headers, json=cart)
    ok = (split.headers.get("x-cache") == "miss" and split.json()["cart_items"] == sorted([a, b])
          and joined.json()["cart_items"] == [] and anonymous.headers.get("x-cache") == "miss"
          and dash.status_code == 200)  # fmt: skip
    return [check('carts ["A|B"] vs ["A","B"], user "-" vs none: separate answers', ok,
                  statuses=[r.status_code for r in (joined, split, dash, anonymous)],
                  caches=[r.headers.get("x-cache") for r in (joined, split, dash, anonymous)])]  # fmt: skip


def roles(client: httpx.Client) -> list[dict[str, Any]]:
    """Checks 7-8: a key of the wrong role gets 403; a key over its rate gets 429 with Retry-After."""
    wrong = {
        "storefront -> report": client.get("/v1/experiments/report", headers={"X-API-Key": KEY}),
        "storefront -> reload": client.post("/v1/admin/reload", headers={"X-API-Key": KEY}),
        "marketer -> events": client.post("/v1/events", headers={"X-API-Key": MARKETER}, json=[]),
        "marketer -> metrics": client.get("/metrics", headers={"X-API-Key": MARKETER}),
    }
    forbidden = all(r.status_code == 403 and r.json()["error"]["code"] == "forbidden" for r in wrong.values())
    used = sum(name.startswith("marketer") for name in wrong)  # refused calls count against the rate too
    calls = [client.get("/v1/bundles", headers={"X-API-Key": MARKETER}) for _ in range(MARKETER_RATE + 2)]
    over = calls[-1]
    limited = ([r.status_code for r in calls] == [200] * (MARKETER_RATE - used) + [429] * (used + 2)
               and int(over.headers.get("retry-after", "0")) >= 1
               and over.json()["error"]["code"] == "rate_limited"
               and client.get("/v1/bundles", headers={"X-API-Key": KEY}).status_code == 200)  # fmt: skip
    return [
        check(
            "a key of the wrong role: 403 naming the role",
            forbidden,
            statuses={k: r.status_code for k, r in wrong.items()},
        ),
        check(
            f"a key over its rate ({MARKETER_RATE}/minute): 429 with Retry-After, other keys unaffected",
            limited,
            statuses=[r.status_code for r in calls],
            retry_after=over.headers.get("retry-after"),
        ),
    ]


def torn_log(server: Server, log: Path) -> list[dict[str, Any]]:
    """Check 5: a torn tail at restart never swallows the next acknowledged event."""
    headers = {"X-API-Key": KEY}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        event = {"event_id": "h-1", "user_id": "u1", "item_id": "i1", "type": "view"}
        first = client.post("/v1/events", headers=headers, json=event)
    server.stop()
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"event_id": "h-torn", "user_id": "u1", "it')  # a write cut short by a crash
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        second = client.post("/v1/events", headers=headers, json={**event, "event_id": "h-2"})
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed, broken = [], 0
    for line in lines:
        try:
            parsed.append(json.loads(line)["event_id"])
        except ValueError:
            broken += 1
    aside = sorted(p.name for p in log.parent.glob(f"{log.name}.torn-*"))
    ok = (
        first.status_code == second.status_code == 202
        and broken == 0
        and {"h-1", "h-2"} <= set(parsed)
        and aside
    )
    return [check("torn event log: repaired at start, the next event kept", bool(ok), broken_lines=broken,
                  logged=parsed[-3:], set_aside=aside)]  # fmt: skip


def redis_killed(work: Path, artifact: Path) -> list[dict[str, Any]]:
    """Check 6: every event acknowledged while Redis is killed -9 and restarted is in the stream."""
    from features.eventlog import read_stream

    redis = PrivateRedis(work / "redis", aof=True)
    redis.workdir.mkdir()
    redis.start()
    env = {"ORDERLIFT_MODEL_URI": str(artifact), "ORDERLIFT_API_KEYS": KEY, "ORDERLIFT_REDIS_URL": redis.url}
    acknowledged: list[str] = []
    statuses: dict[int, int] = {}
    try:
        with (
            Server(env, work, name="hostile-redis", keep_log_in=LOGS).running() as server,
            httpx.Client(base_url=server.url, timeout=10, headers={"X-API-Key": KEY}) as client,
        ):
            for batch in range(120):
                if batch == 40:
                    redis.kill()
                if batch == 70:
                    redis.start()
                ids = [f"k-{batch}-{k}" for k in range(20)]
                events = [
                    {"event_id": i, "user_id": f"u{k}", "item_id": "i1", "type": "view"}
                    for k, i in enumerate(ids)
                ]
                answer = client.post("/v1/events", json=events)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code == 202:
                    acknowledged += ids
                time.sleep(0.02)
        logged = {str(e.get("event_id")) for e in read_stream(redis.url)}
    finally:
        redis.kill()
    lost = [i for i in acknowledged if i not in logged]
    ok = bool(acknowledged) and not lost and 500 not in statuses and 503 in statuses
    return [check("Redis killed -9 mid-ingest (AOF always): no acknowledged event lost", ok,
                  acknowledged=len(acknowledged), lost=len(lost), statuses=statuses)]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "hostile.json")
    args = parser.parse_args()
    setup_logging()
    with tempfile.TemporaryDirectory(prefix="orderlift-hostile-") as tmp:
        work = Path(tmp)
        artifact = make_artifact(make_store(work / "store"), work / "artifact")
        _, items, _ = artifact_ids(artifact)
        log = work / "events" / "events.jsonl"
        env = {
            "ORDERLIFT_MODEL_URI": str(artifact),
            "ORDERLIFT_API_KEYS": KEY,
            "ORDERLIFT_ADMIN_KEYS": ADMIN,
            "ORDERLIFT_MARKETER_KEYS": MARKETER,
            "ORDERLIFT_RATE_LIMIT_MARKETER": f"{MARKETER_RATE}/minute",
            "ORDERLIFT_EVENT_LOG": str(log),
        }
        server = Server(env, work, name="hostile", keep_log_in=LOGS)
        with server.running(), httpx.Client(base_url=server.url, timeout=10) as client:
            results = (
                bodies(server) + routes(server, client) + ambiguous(server, client, items) + roles(client)
            )
            results += torn_log(server, log)
        results += redis_killed(work, artifact)
    passed = all(r["passed"] for r in results)
    summary = {"benchmark": "hostile", "timestamp": stamp(), "machine": machine(), "passed": passed}
    write_json(args.out, {**summary, "checks": results})
    logger.info("%d of %d checks passed", sum(r["passed"] for r in results), len(results))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
