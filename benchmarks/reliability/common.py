"""Shared helpers of the reliability scripts: model artifacts, a private Redis, a server, a load generator.

The private Redis and the server are the tests' own (``tests/harness.py``: ``PrivateRedis``,
``Server``, ``free_port``), re-exported here; a script passes ``keep_log_in=LOGS`` to keep a copy of
its server's log. Everything runs on 127.0.0.1. Every process started here lives in its own process
group and is killed by the context manager that started it; every loop is bounded in count and time.

Load generation uses ``httpx.AsyncClient`` in this process (on uvloop), sharded over many clients
of one or two connections each (one client with 32 connections is CPU-bound at ~250 req/s here).
Open loop (:func:`open_loop`): requests are scheduled at ``t0 + i / rate`` whatever the answers do,
with at most ``max_in_flight`` in flight (when that many are stuck the schedule waits, and
``late_ms`` records how far behind it fell). Closed loop (:func:`closed_loop`): ``concurrency``
workers send back to back; capacity is the 2xx rate of a closed loop at c=32 over 5 s (after a 2 s
warm-up). The client shares the machine's CPUs with the server, so "capacity" is that of this
client + server pair on this box.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script, sys.path[0] is this directory: tests.harness needs the root
    sys.path.insert(1, str(REPO))  # after this directory; benchmarks/ (its training.py) stays off the path

from tests.harness import HOST, PrivateRedis, Server, free_port  # noqa: E402 - needs the root on sys.path
from tests.harness import ORDERLIFT as _ORDERLIFT  # noqa: E402

RESULTS = REPO / "benchmarks/results/reliability"
ORDERLIFT = str(_ORDERLIFT)
LOGS = Path(tempfile.gettempdir()) / "orderlift-reliability-logs"  # copies of server logs (throwaway)

logger = logging.getLogger("benchmarks.reliability")
T = TypeVar("T")

__all__ = [
    "HOST",
    "LOGS",
    "ORDERLIFT",
    "REPO",
    "RESULTS",
    "CpuMonitor",
    "LoadRun",
    "Mark",
    "PrivateRedis",
    "Req",
    "Sample",
    "Server",
    "artifact_ids",
    "closed_loop",
    "criteria_table",
    "fmt_ms",
    "free_port",
    "generator_check",
    "machine",
    "make_artifact",
    "make_store",
    "measure_capacity",
    "open_loop",
    "percentile",
    "rss_kib",
    "run_async",
    "setup_logging",
    "stamp",
    "summarize",
    "timeline",
    "wait_quiet",
    "write_json",
]


def setup_logging() -> None:
    """Log INFO lines through rich to stderr."""
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler()])
    for noisy in ("httpx", "httpcore"):  # one INFO line per request would slow the load generator
        logging.getLogger(noisy).setLevel(logging.WARNING)


def machine() -> dict[str, Any]:
    """Describe the box the run happened on (it may be shared with other jobs)."""
    return {
        "nproc": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "httpx": httpx.__version__,
    }


def wait_quiet(limit_s: float = 120.0, busy_max: float = 0.25) -> float:
    """Wait (at most ``limit_s``) until the CPUs are mostly idle over 1 s; return that busy share."""
    deadline = time.monotonic() + limit_s
    while True:
        before = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        time.sleep(1.0)
        after = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        delta = [b - a for a, b in zip(before, after, strict=True)]
        busy = 1 - (delta[3] + delta[4]) / max(sum(delta), 1)
        if busy <= busy_max or time.monotonic() > deadline:
            return round(busy, 3)


def rss_kib(pid: int) -> int:
    """Return the resident set size of ``pid`` in KiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def write_json(out: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON to ``out`` (creating its directory); return ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    logger.info("wrote %s", out)
    return out


# --- data and artifacts ---------------------------------------------------------------------------


def _run(cmd: Sequence[str], cwd: Path, timeout_s: float = 600.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def make_store(out: Path, users: int = 3000, items: int = 800, seed: int = 3) -> Path:
    """Write a synthetic store with ``orderlift generate``; return its directory."""
    _run([ORDERLIFT, "generate", "--out", str(out), "--users", str(users), "--items", str(items),
          "--seed", str(seed)], cwd=out.parent)  # fmt: skip
    return out


def make_artifact(store: Path, out: Path, factors: int = 16, iterations: int = 5) -> Path:
    """Train ALS on ``store`` (``--holdout none --no-track``) into the artifact directory ``out``."""
    _run([ORDERLIFT, "train", "--events", str(store / "events.csv"), "--items", str(store / "items.csv"),
          "--model", "als", "--factors", str(factors), "--iterations", str(iterations),
          "--holdout", "none", "--no-track", "--out", str(out)], cwd=out.parent)  # fmt: skip
    return out


def artifact_ids(artifact: Path) -> tuple[list[str], list[str], str]:
    """Return the artifact's user ids, item ids and artifact id."""
    import numpy as np

    users = [str(u) for u in np.load(artifact / "users.npy", allow_pickle=False)]
    items = [str(i) for i in np.load(artifact / "items.npy", allow_pickle=False)]
    manifest = json.loads((artifact / "manifest.json").read_text())
    return users, items, str(manifest["artifact_id"])


# --- processes: tests/harness.py (free_port, PrivateRedis, Server) --------------------------------


class CpuMonitor:
    """Sample, once a second in a thread, how many cores the box, the server and this process use.

    ``other`` = box - server - this process: CPU taken by jobs that are not part of the test (the
    machine may be shared), which explains latency spikes that are not the service's doing. Call
    :meth:`align` with the load's ``t0`` so that a row's ``t`` is the end of its 1 s window on the
    load's clock.
    """

    def __init__(self, server: Server, limit_s: float = 3600.0) -> None:
        self.server, self.limit_s = server, limit_s
        self.rows: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _box() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields) - fields[3] - fields[4], sum(fields)

    def _run(self) -> None:
        start = time.perf_counter()
        busy0, total0 = self._box()
        server0, own0 = sum(self.server.cpu_seconds().values()), time.process_time()
        ticks = os.sysconf("SC_CLK_TCK")
        while not self._stop.wait(1.0) and time.perf_counter() - start < self.limit_s:
            busy1, total1 = self._box()
            server1, own1 = sum(self.server.cpu_seconds().values()), time.process_time()
            seconds = (total1 - total0) / ticks / (os.cpu_count() or 1)
            box = (busy1 - busy0) / ticks / max(seconds, 1e-9)
            server, own = (server1 - server0) / max(seconds, 1e-9), (own1 - own0) / max(seconds, 1e-9)
            self.rows.append({"at": time.perf_counter(), "t": round(time.perf_counter() - start, 1),
                              "box_cores": round(box, 2),
                              "server_cores": round(server, 2), "client_cores": round(own, 2),
                              "other_cores": round(max(0.0, box - server - own), 2)})  # fmt: skip
            busy0, total0, server0, own0 = busy1, total1, server1, own1

    def __enter__(self) -> CpuMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def align(self, t0: float) -> None:
        """Express each row's time as seconds since ``t0`` (a perf_counter value: the load's start)."""
        for row in self.rows:
            row["t"] = round(row["at"] - t0, 2)

    def summary(self, lo: float = 0.0, hi: float = float("inf")) -> dict[str, float | None]:
        """Mean and max cores of each kind over the rows with lo <= t < hi."""
        rows = [r for r in self.rows if lo <= r["t"] < hi]
        out: dict[str, float | None] = {}
        for key in ("box_cores", "server_cores", "client_cores", "other_cores"):
            values = [r[key] for r in rows]
            out[f"{key}_mean"] = round(sum(values) / len(values), 2) if values else None
            out[f"{key}_max"] = max(values) if values else None
        return out


# --- load -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """One request to send: a label, a method, a path, and a JSON body (or None)."""

    kind: str
    method: str
    path: str
    body: Any = None


@dataclass
class Sample:
    """What happened to one request; ``t`` is when it was sent, in seconds since the load began."""

    t: float
    latency_s: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    kind: str
    cache: str | None = None
    version: str | None = None
    error: str | None = None
    late_ms: float = 0.0


@dataclass
class Mark:
    """An action taken during the load (kill Redis, swap a model...), with when it began and ended."""

    name: str
    t: float
    t_end: float
    detail: Any = None


@dataclass
class LoadRun:
    """Every sample and mark of one load run."""

    samples: list[Sample]
    marks: list[Mark]
    seconds: float
    target_rps: float | None = None
    stragglers: int = 0  # requests still in flight when the bounded drain gave up
    client_cpu_s: float = 0.0  # CPU seconds this (load generating) process spent meanwhile
    t0: float = 0.0  # perf_counter() when the load began

    def marks_json(self) -> list[dict[str, Any]]:
        """Return the marks as dicts."""
        return [asdict(m) for m in self.marks]


Chooser = Callable[[random.Random], Req]
Action = tuple[float, str, Callable[[], Awaitable[Any]]]


@asynccontextmanager
async def _clients(
    base_url: str, headers: dict[str, str] | None, count: int, conns: int, timeout_s: float
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Open ``count`` clients of ``conns`` connections each: httpx's pool costs CPU per request that
    grows with its connections (one client at c=32 did ~250 req/s here, 32 clients ~1,100)."""
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s, limits=limits)
            )
            for _ in range(count)
        ]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed (a little less client CPU per request)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _send(client: httpx.AsyncClient, req: Req, t0: float, parse_version: bool) -> Sample:
    sent = time.perf_counter()
    cache = version = error = None
    try:
        resp = await client.request(req.method, req.path, json=req.body)
        status = resp.status_code
        cache = resp.headers.get("x-cache")
        if not 200 <= status < 300:
            error = resp.text[:300]
        elif parse_version:
            import orjson

            version = orjson.loads(resp.content).get("model_version")
    except httpx.HTTPError as exc:
        status, error = 0, f"{type(exc).__name__}: {exc}"[:300]
    return Sample(sent - t0, time.perf_counter() - sent, status, req.kind, cache, version, error)


async def open_loop(
    base_url: str,
    rate: float,
    duration_s: float,
    choose: Chooser,
    *,
    headers: dict[str, str] | None = None,
    actions: Sequence[Action] = (),
    max_in_flight: int = 128,
    timeout_s: float = 10.0,
    parse_version: bool = False,
    seed: int = 0,
) -> LoadRun:
    """Send ``rate`` requests per second for ``duration_s`` seconds; run ``actions`` at their times."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    marks: list[Mark] = []
    slots = asyncio.Semaphore(max_in_flight)
    count = max(1, max_in_flight // 2)
    async with _clients(base_url, headers, count, 2, timeout_s) as clients:
        t0, cpu0 = time.perf_counter(), time.process_time()

        async def one(client: httpx.AsyncClient, req: Req, scheduled: float) -> None:
            try:
                sample = await _send(client, req, t0, parse_version)
            finally:
                slots.release()
            sample.late_ms = round(max(0.0, (t0 + sample.t) - scheduled) * 1000, 3)
            samples.append(sample)

        async def act(at: float, name: str, fn: Callable[[], Awaitable[Any]]) -> None:
            await asyncio.sleep(max(0.0, t0 + at - time.perf_counter()))
            began = time.perf_counter() - t0
            try:
                detail = await fn()
            except Exception as exc:  # an action failing is recorded, not fatal to the load
                detail = f"FAILED {type(exc).__name__}: {exc}"
            marks.append(Mark(name, round(began, 3), round(time.perf_counter() - t0, 3), detail))
            logger.info("t=%.1fs %s: %s", began, name, detail)

        acting = [asyncio.create_task(act(at, name, fn)) for at, name, fn in actions]
        pending: set[asyncio.Task[None]] = set()
        for i in range(int(rate * duration_s)):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            task = asyncio.create_task(one(clients[i % count], choose(rng), scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(set(pending), timeout=timeout_s + 5)
        stragglers = len(pending)
        for task in list(pending):
            task.cancel()
        if acting:
            await asyncio.wait(acting, timeout=60)
        seconds = time.perf_counter() - t0
    samples.sort(key=lambda s: s.t)
    marks.sort(key=lambda m: m.t)
    return LoadRun(samples, marks, seconds, rate, stragglers, round(time.process_time() - cpu0, 2), t0)


async def closed_loop(
    base_url: str,
    concurrency: int,
    duration_s: float,
    choose: Chooser,
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
    seed: int = 0,
) -> LoadRun:
    """Run ``concurrency`` workers sending back to back until ``duration_s`` has passed."""
    samples: list[Sample] = []
    async with _clients(base_url, headers, concurrency, 1, timeout_s) as clients:
        t0, cpu0 = time.perf_counter(), time.process_time()
        deadline = t0 + duration_s

        async def worker(k: int) -> None:
            rng = random.Random(seed * 1000 + k)
            while time.perf_counter() < deadline:
                samples.append(await _send(clients[k], choose(rng), t0, False))

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        seconds = time.perf_counter() - t0
    samples.sort(key=lambda s: s.t)
    return LoadRun(samples, [], seconds, client_cpu_s=round(time.process_time() - cpu0, 2), t0=t0)


def measure_capacity(
    base_url: str,
    choose: Chooser,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 32,
    seconds: float = 5.0,
    warmup_s: float = 2.0,
) -> dict[str, Any]:
    """Return the 2xx rate of a closed loop at ``concurrency`` over ``seconds`` (after a warm-up)."""
    if warmup_s > 0:
        run_async(closed_loop(base_url, concurrency, warmup_s, choose, headers=headers, seed=99))
    run = run_async(closed_loop(base_url, concurrency, seconds, choose, headers=headers, seed=1))
    ok = sum(1 for s in run.samples if 200 <= s.status < 300)
    out = summarize(run.samples, 0.0, run.seconds + 1)
    out["capacity_rps"] = round(ok / run.seconds, 1)
    out.update(concurrency=concurrency, seconds=round(run.seconds, 2),
               client_cpu_share=round(run.client_cpu_s / run.seconds, 2))  # fmt: skip
    logger.info("capacity: %.0f rps at c=%d (p50 %.1f ms, p99 %.1f ms, %d non-2xx)", out["capacity_rps"],
                concurrency, out["p50_ms"], out["p99_ms"], out["non_2xx"])  # fmt: skip
    return out


def generator_check(run: LoadRun) -> dict[str, Any]:
    """Say whether the open loop kept its schedule (else latencies include client-side queueing)."""
    sent = len(run.samples) + run.stragglers
    planned = int((run.target_rps or 0) * (run.samples[-1].t if run.samples else 0)) + 1
    late = sorted(s.late_ms for s in run.samples)
    return {
        "sent": sent,
        "client_cpu_share": round(run.client_cpu_s / run.seconds, 2) if run.seconds else None,
        "late_ms_p99": round(percentile(late, 99), 1),
        "late_ms_max": round(late[-1], 1) if late else None,
        "kept_schedule": bool(late) and percentile(late, 99) < 50 and sent >= 0.98 * planned,
    }


def criteria_table(criteria: Sequence[dict[str, Any]]) -> Any:
    """Return a rich table of the criteria, what was measured and whether each was met."""
    from rich.table import Table

    table = Table(title="Criteria")
    for col in ("criterion", "measured", "met?"):
        table.add_column(col)
    for c in criteria:
        table.add_row(c["criterion"], str(c["measured"]), "[green]yes" if c["met"] else "[red]NO")
    return table


def fmt_ms(value: float | None) -> str:
    """Format a latency in ms for a table ("-" when there was nothing to measure)."""
    return "-" if value is None else f"{value:.1f}"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(samples: Sequence[Sample], lo: float, hi: float, kind: str | None = None) -> dict[str, Any]:
    """Summarise the samples sent in [lo, hi) (of one ``kind`` if given): counts, rates, latencies."""
    chosen = [s for s in samples if lo <= s.t < hi and (kind is None or s.kind == kind)]
    ms = [s.latency_s * 1000 for s in chosen]
    hits = sum(1 for s in chosen if s.cache == "hit")
    misses = sum(1 for s in chosen if s.cache == "miss")
    failed = [s for s in chosen if not 200 <= s.status < 300]
    return {
        "window_s": [round(lo, 1), round(hi, 1)],
        "requests": len(chosen),
        "rps": round(len(chosen) / (hi - lo), 1) if hi > lo else 0.0,
        "non_2xx": len(failed),
        "statuses": _count(str(s.status) for s in failed),
        "p50_ms": round(percentile(ms, 50), 2) if ms else None,
        "p90_ms": round(percentile(ms, 90), 2) if ms else None,
        "p99_ms": round(percentile(ms, 99), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
        "hits": hits,
        "misses": misses,
        "hit_rate": round(hits / (hits + misses), 3) if hits + misses else None,
        "max_late_ms": round(max((s.late_ms for s in chosen), default=0.0), 1),
    }


def _count(values: Iterator[str] | Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def stamp() -> str:
    """Return the current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def timeline(samples: Sequence[Sample], seconds: float, step: float = 1.0) -> list[dict[str, Any]]:
    """Return per-``step`` buckets: requests, non-2xx, p50/p99 ms, hit rate."""
    out = []
    for k in range(int(seconds / step + 0.999)):
        s = summarize(samples, k * step, (k + 1) * step)
        out.append(
            {key: s[key] for key in ("window_s", "requests", "non_2xx", "p50_ms", "p99_ms", "hit_rate")}
        )
    return out
