"""Benchmark event ingest through the real HTTP API: ``POST /v1/events`` in batches of 100.

Usage: ``.venv/bin/python benchmarks/events.py [--duration 10] [--repeat 3] [--concurrency 16]
[--batch 100] [--users-per-batch 25] [--modes redis:2,embedded:1] [--out benchmarks/results/events.json]``.

Setup (untimed): a synthetic store (3,000 users, 1,000 items), an ALS model artifact, per mode a real uvicorn
(``service.app:app_from_env``, as ``orderlift serve`` runs it) on 127.0.0.1 in its own session, killed
at the end. ``redis``: stream ``orderlift:events``, Redis DB 12 (flushed before and after).
``embedded``: a JSON-lines file in a temp dir, fsynced per batch; meant for ONE worker (its duplicate
check lives in the process), so measured with 1. Load: this process on uvloop, a minimal HTTP/1.1
client (httpx.AsyncClient cost ~7x more CPU per batch), ``--concurrency`` batches in flight,
reconnecting every 20 batches so connections spread over workers. A batch: distinct event ids,
``--users-per-batch`` users, impressions/views/clicks/carts/purchases, some with a recommendation_id.
Per repeat: wait (bounded) for idle CPUs, 2 s warm-up, ``--duration`` s measured. Logged events (XLEN
/ lines) must equal the acknowledged ones (sum of ``accepted``). CPU cores in the window: generator,
server processes, Redis, and the rest of the box (other people's jobs: the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import uvloop

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REDIS_URL = "redis://127.0.0.1:6379/12"
TARGET_EPS, WARMUP_S, MAX_BATCHES = 20_000.0, 2.0, 200_000  # MAX_BATCHES: per load window
RECYCLE, QUIET_WAIT_S = 20, 60.0  # requests per client connection; max wait for idle CPUs
MIX = {"impression": 0.45, "view": 0.30, "click": 0.10, "cart": 0.10, "purchase": 0.05}
TICK = os.sysconf("SC_CLK_TCK")

logger = logging.getLogger("benchmarks.events")


def session_cpu_s(sid: int) -> dict[int, float]:
    """CPU seconds (user + system) per live process of session ``sid``."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            f = stat.read_text().rsplit(")", 1)[1].split()
            if int(f[3]) == sid:
                out[int(stat.parent.name)] = (int(f[11]) + int(f[12])) / TICK
    return out


def box_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    t = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(t) - t[3] - t[4], sum(t)


def wait_quiet(limit_s: float, busy_max: float = 0.15) -> float:
    """Wait (at most ``limit_s``) until the CPUs are idle over 1 s; return that last busy share."""
    deadline, busy = time.monotonic() + limit_s, 1.0
    while busy > busy_max and time.monotonic() < deadline:
        b0, t0 = box_ticks()
        time.sleep(1.0)
        b1, t1 = box_ticks()
        busy = (b1 - b0) / max(t1 - t0, 1)
    return round(busy, 3)


@contextmanager
def server(env: dict[str, str], workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """Run uvicorn until every worker started and /readyz says 200; yield (url, pid); kill its session."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    cmd = [sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory", "--no-access-log",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]  # fmt: skip
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, cwd=log.parent, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while log.read_text(errors="replace").count("Application startup complete") < workers or (
            httpx.get(f"{url}/readyz", timeout=5).status_code != 200
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


class Batches:
    """Request bodies: distinct event ids, a realistic type mix, the store's user and item ids."""

    def __init__(self, users: list[str], prices: dict[str, float], size: int, per_batch: int) -> None:
        self.users, self.items, self.prices = users, list(prices), prices
        self.weights = [1.0 / (r + 1) for r in range(len(self.items))]  # Zipf-ish popularity
        self.size, self.per_batch = size, per_batch

    def body(self, rng: random.Random, prefix: str) -> bytes:
        now, users = datetime.now(UTC).isoformat(), rng.sample(self.users, self.per_batch)
        items = rng.choices(self.items, self.weights, k=self.size)
        types = rng.choices(list(MIX), list(MIX.values()), k=self.size)
        events = []
        for i, (item, kind) in enumerate(zip(items, types, strict=True)):
            user = users[i % self.per_batch]
            e: dict[str, Any] = {"event_id": f"{prefix}-{i}", "user_id": user, "item_id": item,
                                 "type": kind, "timestamp": now}  # fmt: skip
            if kind in ("impression", "click") or rng.random() < 0.2:
                e["recommendation_id"] = f"default.{rng.getrandbits(128):032x}"
            if kind in ("cart", "purchase"):
                e["quantity"], e["price"] = 1, self.prices[item]
            if kind == "purchase":
                e["order_id"] = f"o-{prefix}-{user}"
            events.append(e)
        return orjson.dumps(events)


class RawClient:
    """A minimal HTTP/1.1 keep-alive POST client on asyncio streams (far cheaper than httpx). It
    reconnects every ``recycle`` requests, so the kernel spreads connections over uvicorn's workers."""

    def __init__(self, port: int, recycle: int) -> None:
        self.port, self.recycle, self.used = port, recycle, 0
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            with suppress(OSError):
                await self.conn[1].wait_closed()
        self.conn, self.used = None, 0

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.conn is None or self.used >= self.recycle:
            await self.close()
            self.conn = await asyncio.open_connection("127.0.0.1", self.port)
        self.used += 1
        reader, writer = self.conn
        writer.write(f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        status, length, close = int((await reader.readline()).split()[1]), 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            length = int(value) if name.lower() == b"content-length" else length
            close |= name.lower() == b"connection" and value.strip().lower() == b"close"
        data = await reader.readexactly(length)
        if close:
            await self.close()
        return status, data


async def load(url: str, batches: Batches, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """Send batches, ``args.concurrency`` in flight, for warm-up + duration; return the counts."""
    loop = asyncio.get_running_loop()
    begin = loop.time() + WARMUP_S
    end = begin + args.duration
    lat: list[float] = []
    status: Counter[str] = Counter()
    got = dict.fromkeys(("acked", "window_events", "window_batches", "batches"), 0)
    cpu: dict[str, Any] = {}
    raw = [RawClient(int(url.rsplit(":", 1)[1]), RECYCLE) for _ in range(args.concurrency)]

    async def worker(k: int) -> None:
        rng, n = random.Random(f"{args.seed}-{tag}-{k}"), 0
        while loop.time() < end and got["batches"] < MAX_BATCHES:
            got["batches"] += 1
            body, n = batches.body(rng, f"{tag}-{k}-{n}"), n + 1
            t0 = time.perf_counter()
            try:
                code, data = await asyncio.wait_for(raw[k].post("/v1/events", body), 10.0)
                accepted = int(orjson.loads(data).get("accepted", 0)) if code == 202 else 0
            except (OSError, ValueError, IndexError, TimeoutError) as exc:
                code, accepted = type(exc).__name__, 0  # type: ignore[assignment]
                await raw[k].close()
            took, done = time.perf_counter() - t0, loop.time()
            got["acked"] += accepted
            if begin <= done < end:
                lat.append(took)
                status[str(code)] += 1
                got["window_batches"] += 1
                got["window_events"] += accepted

    def snap() -> tuple[float, dict[int, float], float, tuple[int, int]]:
        info: Any = args.redis.info("cpu")
        redis_s = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return sum(os.times()[:2]), session_cpu_s(args.server_pid), redis_s, box_ticks()

    async def clock() -> None:
        await asyncio.sleep(max(0.0, begin - loop.time()))
        (g0, s0, r0, b0), cpu["wall0"] = snap(), loop.time()
        await asyncio.sleep(max(0.0, end - loop.time()))
        (g1, s1, r1, b1), wall = snap(), loop.time() - cpu["wall0"]
        per = sorted((v - s0.get(p, 0.0)) / wall for p, v in s1.items())
        cpu.update(gen=(g1 - g0) / wall, srv=sum(per), redis=(r1 - r0) / wall)
        cpu["per_process"] = [round(c, 2) for c in per if c > 0.02]
        cpu["box"] = (b1[0] - b0[0]) / TICK / wall
        cpu["others"] = max(0.0, cpu["box"] - cpu["gen"] - cpu["srv"] - cpu["redis"])

    try:
        await asyncio.gather(clock(), *(worker(k) for k in range(args.concurrency)))
    finally:
        for conn in raw:
            await conn.close()
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    return {
        "events_per_s": round(got["window_events"] / args.duration, 1),
        "batches_per_s": round(got["window_batches"] / args.duration, 1),
        "p50_ms": round(q[49] * 1000, 2), "p99_ms": round(q[98] * 1000, 2),
        "statuses": dict(status), "non_202": sum(v for k, v in status.items() if k != "202"),
        "acked": got["acked"], "server_cores_per_process": cpu.pop("per_process"),
        "cpu_cores": {k: round(cpu[k], 2) for k in ("gen", "srv", "redis", "others", "box")},
        "events_per_server_core_s": round(got["window_events"] / args.duration / max(cpu["srv"], 1e-9)),
    }  # fmt: skip


def run_mode(
    mode: str, workers: int, work: Path, batches: Batches, args: argparse.Namespace
) -> dict[str, Any]:
    """Serve one mode, load it ``--repeat`` times, count what was logged; return the median repeat."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLIFT_")}
    env.update(ORDERLIFT_MODEL_URI=str(work / "artifact"), ORDERLIFT_RELOAD_INTERVAL_S="0",
               OPENBLAS_NUM_THREADS="1")  # fmt: skip
    log_file, server_log = work / f"{mode}-{workers}w" / "events.jsonl", work / f"server-{mode}-{workers}.log"
    env |= {"ORDERLIFT_REDIS_URL": REDIS_URL} if mode == "redis" else {"ORDERLIFT_EVENT_LOG": str(log_file)}
    args.redis.flushdb()
    try:
        with server(env, workers, server_log) as (url, pid):
            args.server_pid, runs = pid, []
            for i in range(args.repeat):
                busy = wait_quiet(QUIET_WAIT_S)
                runs.append({"cpu_busy_before": busy} | uvloop.run(load(url, batches, args, f"{mode}{i}")))
                logger.info("%s/%dw #%d: %.0f events/s, %s", mode, workers, i, runs[-1]["events_per_s"],
                            runs[-1]["cpu_cores"])  # fmt: skip
            ready = [httpx.get(f"{url}/readyz", timeout=5).json() for _ in range(4 * workers)]
            per_worker = {json.dumps(r["counters"]): {k: r[k] for k in ("counters", "cache")} for r in ready}
        if mode == "redis":
            logged = int(args.redis.xlen("orderlift:events"))
        else:
            with log_file.open("rb") as fh:
                logged = sum(1 for _ in fh)
    finally:
        args.redis.flushdb()
    lines = server_log.read_text(errors="replace").splitlines()
    errors = [line[-600:] for line in lines if "unexpected error" in line or "Traceback" in line]
    row = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
    acked = sum(r["acked"] for r in runs)
    return row | {
        "mode": mode, "workers": workers, "runs_events_per_s": [r["events_per_s"] for r in runs],
        "non_202_all_runs": sum(r["non_202"] for r in runs), "acked_all_runs": acked,
        "events_logged": logged, "logged_equals_acked": logged == acked, "runs": runs,
        "per_worker_readyz": list(per_worker.values()), "server_log_errors": errors[-5:],
        "cache_breaker_openings": sum("redis cache failed" in line for line in lines),
        "target": f">= {TARGET_EPS:,.0f} ev/s" if mode == "redis" else "(none: 1 worker, fsync)",
        "met": row["events_per_s"] >= TARGET_EPS if mode == "redis" else None,
    }  # fmt: skip


def setup(work: Path, seed: int) -> tuple[list[str], dict[str, float]]:
    """Generate a store and train an ALS model artifact (untimed); return the users and the item prices."""
    cli, store = str(BIN / "orderlift"), work / "store"
    data = ["--events", str(store / "events.csv"), "--items", str(store / "items.csv")]
    for cmd in (
        ["generate", "--out", str(store), "--users", "3000", "--items", "1000", "--seed", str(seed)],
        [
            "train",
            *data,
            "--model",
            "als",
            "--holdout",
            "none",
            "--no-track",
            "--out",
            str(work / "artifact"),
        ],
    ):
        subprocess.run([cli, *cmd], check=True, capture_output=True, timeout=600, cwd=work)
    users = sorted(json.loads((store / "truth.json").read_text())["user_category"])
    with (store / "items.csv").open(newline="") as fh:
        return users, {r["item_id"]: float(r["price"]) for r in csv.DictReader(fh)}


def show(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (
        f"POST /v1/events: batches of {args.batch} events ({args.users_per_batch} users), "
        f"{args.concurrency} in flight, {args.duration:g} s per run; CPU in cores (others: other jobs)"
    )
    table = Table(title=title)
    for col in ("mode", "run", "events/s", "batches/s", "p50 ms", "p99 ms", "non-202", "CPU gen", "server",
                "redis", "others", "events/server-core-s", "target met?", "logged = acked?"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("mode", "logged = acked?") else "right")
    for r in rows:
        for i, x in enumerate(r["runs"]):
            c, last = x["cpu_cores"], i == len(r["runs"]) - 1
            met = "-" if r["met"] is None else "[green]yes" if x["events_per_s"] >= TARGET_EPS else "[red]NO"
            check = (f"{r['events_logged']:,} = {r['acked_all_runs']:,}: "
                     + ("[green]yes" if r["logged_equals_acked"] else "[red]NO"))  # fmt: skip
            table.add_row(f"{r['mode']} ({r['workers']} worker{'s' * (r['workers'] > 1)})" if i == 0 else "",
                          str(i + 1), f"{x['events_per_s']:,.0f}", f"{x['batches_per_s']:,.1f}",
                          f"{x['p50_ms']:.1f}", f"{x['p99_ms']:.1f}", str(x["non_202"]),
                          *(f"{c[k]:.2f}" for k in ("gen", "srv", "redis", "others")),
                          f"{x['events_per_server_core_s']:,.0f}", met, check if last else "",
                          end_section=last)  # fmt: skip
    console = Console(width=max(Console().width, 170))
    console.print(table)
    for r in rows:
        verdict = "" if r["met"] is None else f": {'met' if r['met'] else 'NOT met'} by the median"
        console.print(
            f"{r['mode']}: median run {r['events_per_s']:,.0f} events/s, target {r['target']}{verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--users-per-batch", type=int, default=25)
    parser.add_argument("--modes", default="redis:2,embedded:1", help="mode:workers,...")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/events.json")
    args = parser.parse_args()
    if not (0 < args.duration <= 120 and 0 < args.repeat <= 10 and 0 < args.concurrency <= 256
            and 0 < args.users_per_batch <= args.batch <= 1000):  # fmt: skip
        parser.error("need --duration <= 120, --repeat <= 10, --concurrency <= 256, "
                     "0 < --users-per-batch <= --batch <= 1000")  # fmt: skip
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler()])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    modes = [(m.split(":")[0], int(m.split(":")[1])) for m in args.modes.split(",")]
    args.redis, rows = redis.Redis.from_url(REDIS_URL, socket_timeout=10), []
    try:
        with tempfile.TemporaryDirectory(prefix="orderlift-events-") as tmp:
            batches = Batches(*setup(Path(tmp), args.seed), args.batch, args.users_per_batch)
            rows = [run_mode(mode, workers, Path(tmp), batches, args) for mode, workers in modes]
    finally:
        args.redis.flushdb()
        args.redis.close()
    keys = ("batch", "users_per_batch", "concurrency", "duration", "repeat", "seed")
    git = ["git", "-C", str(REPO), "describe", "--always", "--dirty"]
    info = {k: getattr(args, k) for k in keys} | {"mix": MIX, "nproc": os.cpu_count(),
            "loadavg_after": os.getloadavg(), "python": platform.python_version(),
            "git": subprocess.run(git, capture_output=True, text=True, timeout=30).stdout.strip(),
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    show(rows, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"setup": info, "runs": rows}, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
