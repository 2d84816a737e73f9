"""Benchmark the HTTP service with wrk: cached and uncached recommendations and cart cross-sell.

Usage: ``.venv/bin/python benchmarks/serving.py [--duration 10] [--connections 32] [--workers 2]
[--items 50000] [--out benchmarks/results/serving.json]``.

Setup is untimed: a synthetic store, an ALS model artifact, uvicorn on 127.0.0.1 (``orderlift serve``, and a
bare FastAPI app sending pre-serialised bytes, run by the same worker launcher with the same flags;
ours at the service's default ``ORDERLIFT_ACCESS_LOG=all`` unless ``--access-log errors``). wrk's
Lua scripts vary paths and bodies and count X-Cache values and non-2xx answers; the servers' CPU
per request comes from /proc, and each run first waits (bounded) for idle CPUs. (c) is also timed
in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REDIS_URL = "redis://127.0.0.1:6379/14"
HOT_USERS, CART, N, WHOLESALE = 200, 20, 10, 1_500
LUA_COMMON = r"""
ids, n, hits, misses, non2xx, threads = {}, 0, 0, 0, 0, {}
function setup(thread) table.insert(threads, thread); thread:set("tid", #threads) end
function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  n = math.floor(#ids * (tid - 1) / tonumber(args[3]))
  math.randomseed(tonumber(args[2]) + tid)
end
function response(status, headers, body)
  local c = headers["x-cache"] or headers["X-Cache"]
  if c == "hit" then hits = hits + 1 elseif c == "miss" then misses = misses + 1 end
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local t, e = {hits = 0, misses = 0, non2xx = 0}, summary.errors
  for _, th in ipairs(threads) do for k in pairs(t) do t[k] = t[k] + th:get(k) end end
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50":%d,"p90":%d,"p99":%d,'
    .. '"max":%d,"hits":%d,"misses":%d,"non2xx":%d,"socket_errors":%d}\n', summary.requests,
    summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, t.hits, t.misses, t.non2xx, e.connect + e.read + e.write
    + e.timeout))
end
"""
LUA_RECS = """
function request()
  n = n % #ids + 1
  return wrk.format("GET", "/v1/users/" .. ids[n] .. "/recommendations?n=@N@")
end
"""
LUA_CART = """
local json = {["Content-Type"] = "application/json"}
function request()
  local p = {}
  for k = 1, @CART@ do p[k] = '{"item_id":"' .. ids[math.random(#ids)] .. '","quantity":1}' end
  return wrk.format("POST", "/v1/cart/cross-sell", json, '{"items":[' .. table.concat(p, ",") .. '],"n":@N@}')
end
"""
BARE_RUN = "import sys; from service.workers import run_workers; \
run_workers('bareapp:app', '127.0.0.1', int(sys.argv[-1]), int(sys.argv[1]))"  # as `orderlift serve` does
BARE_APP = """import logging
from pathlib import Path
from fastapi import FastAPI
from fastapi.responses import Response
logging.basicConfig(level=logging.INFO)  # ours logs at INFO too (startup lines; no access log here)
PAYLOAD = Path(__file__).with_name("payload.json").read_bytes()
app = FastAPI()
@app.get("/v1/users/{user_id}/recommendations")
async def recs(user_id: str) -> Response:
    return Response(content=PAYLOAD, media_type="application/json", headers={"X-Cache": "hit"})
"""

logger = logging.getLogger("benchmarks.serving")


def summary(seconds: list[float]) -> dict[str, float]:
    """Per-call latency summary in microseconds."""
    s = sorted(seconds)
    got = {**{f"p{p}": s[min(len(s) - 1, int(p / 100 * len(s)))] for p in (50, 90, 99)}, "max": s[-1]}
    return {k: round(v * 1e6, 1) for k, v in {**got, "mean": statistics.fmean(s)}.items()}


def measure_inprocess(artifact: Path, seconds: float, seed: int) -> dict[str, Any]:
    """(c) in this fresh process: bare implicit recommend vs Scorer.for_user, alternating per call."""
    import numpy as np
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from service.config import Settings
    from service.engine import Engine
    from service.loading import load
    from service.scorer import Filters

    loaded = load(str(artifact), "sqlite:///unused.db", verify=False)
    scorer = Engine.build(loaded, Settings()).scorer
    user_items, users, ours = loaded.artifact.history, loaded.artifact.users.ids, loaded.model
    model = AlternatingLeastSquares(factors=ours.item_factors.shape[1], random_state=0)  # type: ignore[attr-defined]
    model.user_factors, model.item_factors = ours.user_factors, ours.item_factors  # type: ignore[attr-defined]
    order = np.random.default_rng(seed).permutation(len(users)).tolist()
    times: dict[str, list[float]] = {"bare": [], "ours": []}
    clock = time.perf_counter
    calls: dict[str, Callable[[int], object]] = {
        "bare": lambda row: model.recommend(row, user_items[row], N=N),
        "ours": lambda row: scorer.for_user(str(users[row]), N, Filters()),
    }

    with threadpool_limits(1, "blas"):
        for row in order[:300]:  # warm-up
            calls["bare"](row), calls["ours"](row)
        deadline = clock() + seconds
        for i, row in enumerate(order[300:]):
            for who in ("bare", "ours") if i % 2 else ("ours", "bare"):
                began = clock()
                calls[who](row)
                times[who].append(clock() - began)
            if clock() > deadline:
                break
    return {"calls": len(times["ours"]), "bare_us": summary(times["bare"]), "ours_us": summary(times["ours"])}


def wholesale(
    port: int, items: list[str], seed: int, lines: int = WHOLESALE, carts: int = 20
) -> dict[str, Any]:
    """(e) Post ``carts`` new carts of ``lines`` distinct items one at a time; time each answer."""
    import numpy as np

    rng, seconds, statuses = np.random.default_rng(seed), [], []
    for _ in range(carts):
        cart = [{"item_id": items[i], "quantity": 1} for i in rng.choice(len(items), lines, replace=False)]
        body = json.dumps({"items": cart, "n": N}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/cart/cross-sell", body,
                                         {"Content-Type": "application/json"})  # fmt: skip
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                resp.read()
                statuses.append(resp.status)
        except OSError:
            statuses.append(0)
        seconds.append(time.perf_counter() - began)
    ms = sorted(x * 1000 for x in seconds)
    logger.info("(e) %d-line carts: max %.1f ms, statuses %s", lines, ms[-1], sorted(set(statuses)))
    return {"scenario": f"(e) cross-sell, {lines:,}-line cart, one at a time", "rps": carts / sum(seconds),
            "p50_ms": ms[len(ms) // 2], "p90_ms": ms[int(len(ms) * 0.9)], "p99_ms": ms[-1], "max_ms": ms[-1],
            "non2xx": sum(s != 200 for s in statuses), "socket_errors": 0, "hits": 0, "misses": carts,
            "requests": carts}  # fmt: skip


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except OSError:  # HTTPError included: only 200 counts
        return 0, b""


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of process group ``pgid``."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12]) if int(fields[2]) == pgid else 0
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit_s: float, busy_max: float = 0.15) -> float:
    """Wait (at most ``limit_s``) until the CPUs are idle over 1 s; return that last busy share."""
    deadline, stat = time.monotonic() + limit_s, Path("/proc/stat")
    while True:
        before = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
        time.sleep(1.0)
        delta = [
            int(x) - b for x, b in zip(stat.read_text().split("\n", 1)[0].split()[1:], before, strict=True)
        ]
        busy = 1 - (delta[3] + delta[4]) / max(sum(delta), 1)  # idle + iowait
        if busy <= busy_max or time.monotonic() > deadline:
            return round(busy, 3)


@contextmanager
def server(name: str, cmd: list[str], env: dict[str, str], ready: str, work: Path,
           workers: int) -> Iterator[tuple[int, int]]:  # fmt: skip
    """Run ``cmd --port P`` in its own process group until every worker started and ``ready`` answers
    200; yield (port, process group); kill the group on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        log, port = work / f"{name}.log", int(sock.getsockname()[1])
    with log.open("wb") as sink:
        proc = subprocess.Popen([*cmd, "--port", str(port)], env=env, cwd=work, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while log.read_text(errors="replace").count("Application startup complete") < workers or (
            http_get(f"http://127.0.0.1:{port}{ready}")[0] != 200
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        logger.info("%s ready on port %d (pid %d)", name, port, proc.pid)
        yield port, proc.pid
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wrk(port: int, script: Path, ids: Path, args: argparse.Namespace, secs: float,
        seed: int) -> dict[str, Any]:  # fmt: skip
    """Run wrk once, bounded by ``secs`` (``seed``: the Lua RNG); return req/s, ms latencies, counts."""
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{secs:g}s", "--timeout", "2s", "-s",
           str(script), f"http://127.0.0.1:{port}", "--", str(ids), str(seed), str(args.threads)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    r: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    secs = r.pop("duration_us") / 1e6
    ms = {f"{k}_ms": r.pop(k) / 1000 for k in ("p50", "p90", "p99", "max")}
    size = round(r.pop("bytes") / max(r["requests"], 1))
    return {"rps": round(r["requests"] / secs, 1), **ms, "bytes_per_response": size, **r, "seconds": secs}


def scenario(name: str, srv: tuple[int, int], script: Path, ids: Path, warm_ids: Path,
             args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """Warm up (recorded apart, other ids/carts), wait for idle CPUs, measure one scenario."""
    port, pgid = srv
    warm = wrk(port, script, warm_ids, args, 3.0, args.seed + 1000)
    busy, cpu = wait_quiet(args.quiet_wait), group_cpu_s(pgid)
    r = {"scenario": name, **wrk(port, script, ids, args, args.duration, args.seed)}
    r.update(server_cpu_ms_per_request=round((group_cpu_s(pgid) - cpu) * 1e3 / max(r["requests"], 1), 3),
             cpu_busy_before=busy, warmup=warm)  # fmt: skip
    logger.info("%s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, hit/miss %d/%d, non-2xx %d, %.2f CPU-ms/req",
                name, r["rps"], r["p50_ms"], r["p99_ms"], r["hits"], r["misses"], r["non2xx"],
                r["server_cpu_ms_per_request"])  # fmt: skip
    return r


def serve_command(artifact: Path, workers: int) -> list[str]:
    """Return ``orderlift serve`` for ``artifact``: several workers each with an in-process cache unless
    ORDERLIFT_REDIS_URL is set, as measured."""
    return [str(BIN / "orderlift"), "serve", "--model-uri", str(artifact), "--workers", str(workers),
            "--local-workers"]  # fmt: skip


def http_rows(args: argparse.Namespace, work: Path, artifact: Path, env: dict[str, str]) -> list[Any]:
    """Start the servers one after another and run every wrk scenario against them."""
    import numpy as np
    import redis

    users = np.random.default_rng(args.seed).permutation(np.load(artifact / "users.npy").astype(str)).tolist()
    a, b = HOT_USERS, HOT_USERS + 5000  # disjoint user sets: (b); warm-up of (c); measured (c)
    lists = {"hot": users[:a], "warm": users[a:b], "cold": users[b:],
             "items": np.load(artifact / "items.npy").astype(str).tolist()}  # fmt: skip
    ids = {name: work / f"{name}.txt" for name in lists}
    for name, values in lists.items():
        ids[name].write_text("\n".join(values) + "\n")
    recs, cart = work / "recs.lua", work / "cart.lua"
    recs.write_text(LUA_COMMON + LUA_RECS.replace("@N@", str(N)))
    cart.write_text(LUA_COMMON + LUA_CART.replace("@N@", str(N)).replace("@CART@", str(CART)))
    serve = serve_command(artifact, args.workers)
    bare_env = {**env, "PYTHONPATH": os.pathsep.join([str(work), env["PYTHONPATH"]])}
    rows, hot, items = [], ids["hot"], ids["items"]
    with server("ours-memory", serve, env, "/readyz", work, args.workers) as ours:
        status, payload = http_get(f"http://127.0.0.1:{ours[0]}/v1/users/{users[0]}/recommendations?n={N}")
        if status != 200 or json.loads(payload)["source"] != "personalized":
            raise RuntimeError(f"unexpected answer {status}: {payload[:300]!r}")
        (work / "payload.json").write_bytes(payload)
        (work / "bareapp.py").write_text(BARE_APP)
        bare = [sys.executable, "-c", BARE_RUN, str(args.workers)]
        with server("bare", bare, bare_env, "/v1/users/x/recommendations", work, args.workers) as srv:
            rows.append(scenario("(a) bare FastAPI, pre-serialised bytes", srv, recs, hot, hot, args))
        rows[0]["payload_bytes"] = len(payload)
        rows.append(scenario("(b) cached recs, in-process cache", ours, recs, hot, hot, args))
        rows.append(scenario("(c) cache-miss recs over HTTP", ours, recs, ids["cold"], ids["warm"], args))
        rows.append(scenario(f"(d) cross-sell, {CART}-item cart, cold", ours, cart, items, items, args))
        rows.append(wholesale(ours[0], lists["items"], args.seed))
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        logger.warning("skipping the Redis variant: %s unreachable (%s)", REDIS_URL, exc)
        return rows
    try:
        renv = {**env, "ORDERLIFT_REDIS_URL": REDIS_URL}
        with server("ours-redis", serve, renv, "/readyz", work, args.workers) as ours:
            rows.append(scenario("(b) cached recs, Redis cache", ours, recs, hot, hot, args))
            rows[-1]["readyz_cache"] = json.loads(http_get(f"http://127.0.0.1:{ours[0]}/readyz")[1])["cache"]
    finally:
        client.flushdb()
    return rows


def judge(rows: list[dict[str, Any]], inproc: dict[str, Any]) -> list[dict[str, Any]]:
    """Attach targets; add the two in-process rows (per call; req/s = 1 / mean)."""
    for r in rows:
        ok = r["non2xx"] == 0 and r["socket_errors"] == 0
        if r["scenario"].startswith("(b)"):
            r["vs_a"] = round(r["rps"] / rows[0]["rps"], 3)
            r["target"] = f">= 90% of (a) req/s (got {r['vs_a']:.0%}); p99 <= 5 ms"
            r["met"] = ok and r["misses"] == 0 and r["vs_a"] >= 0.9 and r["p99_ms"] <= 5
        elif r["scenario"].startswith("(d)"):
            r["vs_a"] = round(r["rps"] / rows[0]["rps"], 3)
            r["p99_vs_a"] = round(r["p99_ms"] / rows[0]["p99_ms"], 2)
            got = f"got {r['vs_a']:.2f}; p99 <= 2x (a)'s, got {r['p99_vs_a']:.1f}x"
            r["target"] = f">= 0.5 of (a) req/s ({got})"
            r["met"] = ok and r["hits"] == 0 and r["vs_a"] >= 0.5 and r["p99_vs_a"] <= 2
        elif r["scenario"].startswith("(e)"):
            r["target"], r["met"] = "every answer 200 within 250 ms", ok and r["max_ms"] <= 250
    ratio = {k: round(inproc["ours_us"][k] / inproc["bare_us"][k], 3) for k in ("p50", "mean")}
    inproc["ours_over_bare"] = ratio
    for who, label in (("bare", "bare implicit model.recommend"), ("ours", "ours Scorer.for_user")):
        us = inproc[f"{who}_us"]
        row = {"scenario": f"(c) in-process, {label}", "rps": 1e6 / us["mean"], "non2xx": 0, "hits": "-",
               "misses": "-", "server_cpu_ms_per_request": us["mean"] / 1000,
               **{f"{k}_ms": us[k] / 1000 for k in ("p50", "p90", "p99", "max")}}  # fmt: skip
        if who == "ours":
            row["target"] = f"ours/bare <= 1.1x (p50 {ratio['p50']:.2f}x, mean {ratio['mean']:.2f}x)"
            row["met"] = ratio["p50"] <= 1.1
        rows.append(row)
    return rows


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    libs = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "implicit", "numpy", "scipy", "orjson",
            "redis")  # fmt: skip
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)), "loadavg": os.getloadavg(),
            "python": platform.python_version(), "platform": platform.platform(), "wrk": wrk_v.strip(),
            **{lib: version(lib) for lib in libs}}  # fmt: skip


def cpu(row: dict[str, Any]) -> str:
    """Return a row's server CPU-ms per request, or '-' where it was not measured."""
    value = row.get("server_cpu_ms_per_request")
    return "-" if value is None else f"{value:.2f}"


def show(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 180))
    table = Table(title="Serving benchmark (ms; in-process rows: per call, req/s = 1/mean)")
    for col in ("scenario", "req/s", "p50", "p90", "p99", "max", "non-2xx", "X-Cache hit/miss",
                "CPU ms/req", "target", "met?"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("scenario", "target") else "right")
    for r in rows:
        met = "" if r.get("met") is None else "[green]yes" if r["met"] else "[red]NO"
        table.add_row(r["scenario"], f"{r['rps']:,.0f}", *(f"{r[f'{k}_ms']:.2f}" for k in ("p50", "p90",
                      "p99", "max")), str(r["non2xx"]), f"{r['hits']}/{r['misses']}",
                      cpu(r), r.get("target", ""), met)  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    opts = {"duration": 10.0, "connections": 32, "workers": 2, "threads": 1, "items": 50_000,
            "users": 100_000, "seed": 1}  # fmt: skip
    for name, default in opts.items():  # duration: s per measured run; threads: wrk's (it shares the CPUs)
        parser.add_argument(f"--{name}", type=type(default), default=default)
    parser.add_argument("--quiet-wait", type=float, default=60.0, help="max s to wait for idle CPUs")
    parser.add_argument(
        "--access-log",
        choices=("all", "errors"),
        default="all",
        help="ORDERLIFT_ACCESS_LOG of ours (all: the service's default, what users run)",
    )
    parser.add_argument("--workdir", type=Path, help="keep the store and artifact here and reuse them")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/serving.json")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # an artifact: the in-process child
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_inprocess(args.measure, args.duration, args.seed)))
        return
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler()])
    with tempfile.TemporaryDirectory(prefix="orderlift-serving-") as tmp:
        work = args.workdir or Path(tmp)
        store, artifact, cli = work / "store", work / "artifact", str(BIN / "orderlift")
        if not (store / "events.csv").is_file():
            subprocess.run([cli, "generate", "--out", str(store), "--users", str(args.users), "--days", "90",
                            "--items", str(args.items), "--seed", str(args.seed)], check=True)  # fmt: skip
        if not (artifact / "manifest.json").is_file():
            subprocess.run([cli, "train", "--events", str(store / "events.csv"), "--items",
                            str(store / "items.csv"), "--model", "als", "--holdout", "none", "--no-track",
                            "--out", str(artifact)], check=True, cwd=work)  # fmt: skip
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLIFT_")}  # no keys, no Redis
        env.update(OPENBLAS_NUM_THREADS="1", PYTHONPATH=path, ORDERLIFT_ACCESS_LOG=args.access_log)
        logger.info("(c) in-process: implicit recommend vs Scorer.for_user (fresh interpreter)")
        busy = wait_quiet(args.quiet_wait)
        cmd = [sys.executable, "-P", __file__, "--measure", str(artifact), "--duration", str(args.duration),
               "--seed", str(args.seed)]  # fmt: skip
        child = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
        if child.returncode != 0:
            raise RuntimeError(f"in-process child failed:\n{child.stderr[-3000:]}")
        inproc = {**json.loads(child.stdout.strip().splitlines()[-1]), "cpu_busy_before": busy}
        rows = judge(http_rows(args, work, artifact, env), inproc)
    show(rows)
    config = {k: getattr(args, k) for k in opts} | {"hot_users": HOT_USERS, "cart_items": CART, "n": N,
                                                   "access_log": args.access_log}  # fmt: skip
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    result = {"machine": machine(), "timestamp": stamp, "config": config, "load_generator": "wrk",
              "scenarios": rows, "inprocess_c": inproc}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
