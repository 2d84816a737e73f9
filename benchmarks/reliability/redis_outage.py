"""Kill -9 the service's Redis under load and bring it back: every request must still answer 2xx.

Usage: ``.venv/bin/python benchmarks/reliability/redis_outage.py [--duration 60] [--kill-at 20]
[--restart-at 40] [--load 0.7] [--workers 2] [--out benchmarks/results/reliability/redis_outage.json]``.

Setup (untimed): a synthetic store (3,000 users, 800 items), an ALS model artifact, a private redis-server
(``--save '' --appendonly no``, its own port; the shared Redis is never touched) and ``orderlift
serve --workers 2`` with ORDERLIFT_REDIS_URL pointing at it and ORDERLIFT_CACHE_TTL_S=10 (so misses
keep happening after the first pass). Requests: GET /v1/users/{u}/recommendations over 500 users
(450 known to the model, 50 unknown: the popular fallback). Capacity = 2xx rate of a closed loop at
c=32 over 5 s; then an open loop at ``--load`` x capacity for ``--duration`` s, the private Redis
killed -9 at ``--kill-at`` and restarted on the same port at ``--restart-at``. ``--fault stop``
(an extra, default output ``redis_outage_stop.json``) SIGSTOPs Redis instead and SIGCONTs it: a
hung server that keeps its port, so calls time out instead of being refused.

Criteria: zero non-2xx (and zero transport errors); cache hit rate (X-Cache) > 0 in the last 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from common import (
    LOGS,
    RESULTS,
    CpuMonitor,
    PrivateRedis,
    Req,
    Server,
    artifact_ids,
    criteria_table,
    fmt_ms,
    generator_check,
    machine,
    make_artifact,
    make_store,
    measure_capacity,
    open_loop,
    run_async,
    setup_logging,
    stamp,
    summarize,
    timeline,
    wait_quiet,
    write_json,
)

logger = logging.getLogger("benchmarks.reliability.redis_outage")


def chooser(users: list[str]) -> Any:
    def choose(rng: random.Random) -> Req:
        return Req("recs", "GET", f"/v1/users/{rng.choice(users)}/recommendations?n=10")

    return choose


def log_counts(log: Path) -> dict[str, int]:
    """Count the server log's lines that say something about Redis or errors."""
    text = log.read_text(errors="replace")
    needles = {
        "redis_cache_failed": "redis cache failed",
        "breaker_closed": "reachable again",
        "live_history_unavailable": "live history of",
        "traceback": "Traceback",
        "level_error": '"level": "error"',
    }
    return {name: text.count(needle) for name, needle in needles.items()}


def _cores(cpu: dict[str, Any]) -> str:
    if cpu.get("other_cores_mean") is None:
        return "-"
    return f"{cpu['other_cores_mean']:.2f}/{cpu['other_cores_max']:.2f}"


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 140))
    cap = result["capacity"]["capacity_rps"]
    title = (f"Redis outage ({result['fault']}) under load: {result['workers']} workers, "
             f"{result['target_rps']:.0f} rps target (capacity {cap:.0f} rps at c=32); "
             f"fault at t={result['kill_at']:g}s, over at t={result['restart_at']:g}s")  # fmt: skip
    table = Table(title=title)
    for col in ("phase", "window s", "requests", "non-2xx", "p50 ms", "p90 ms", "p99 ms", "max ms",
                "hit rate", "max late ms", "other cores mean/max"):  # fmt: skip
        table.add_column(col, justify="left" if col == "phase" else "right")
    for name, s in result["phases"].items():
        table.add_row(name, f"{s['window_s'][0]:g}-{s['window_s'][1]:g}", f"{s['requests']:,}",
                      str(s["non_2xx"]), fmt_ms(s["p50_ms"]), fmt_ms(s["p90_ms"]), fmt_ms(s["p99_ms"]),
                      fmt_ms(s["max_ms"]), "-" if s["hit_rate"] is None else f"{s['hit_rate']:.1%}",
                      f"{s['max_late_ms']:.0f}", _cores(s["cpu"]))  # fmt: skip
    console.print(table)
    console.print(criteria_table(result["criteria"]))
    console.print(f"achieved {result['achieved_rps']} rps; load generator: {result['generator']}")
    console.print(f"marks: {result['marks']}")
    console.print(f"server log: {result['server_log_counts']}")
    console.print(f"worker CPU s during the load: {result['worker_cpu_s_during_load']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--kill-at", type=float, default=20.0)
    parser.add_argument("--restart-at", type=float, default=40.0)
    parser.add_argument("--load", type=float, default=0.7, help="share of the measured capacity")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fault", choices=("kill", "stop"), default="kill", help="kill -9 or SIGSTOP")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or RESULTS / ("redis_outage.json" if args.fault == "kill" else "redis_outage_stop.json")
    setup_logging()

    with tempfile.TemporaryDirectory(prefix="orderlift-rel-redis-") as tmp:
        work = Path(tmp)
        store = make_store(work / "store")
        artifact = make_artifact(store, work / "artifact")
        known, _, artifact_id = artifact_ids(artifact)
        pick = random.Random(5)
        users = pick.sample(known, 450) + [f"new{k:03d}" for k in range(50)]
        redis = PrivateRedis(work)
        redis.start()
        env = {
            "ORDERLIFT_MODEL_URI": str(artifact),
            "ORDERLIFT_REDIS_URL": redis.url,
            "ORDERLIFT_CACHE_TTL_S": "10",
            "ORDERLIFT_EVENT_LOG": str(work / "events.jsonl"),
        }
        server = Server(env, work, workers=args.workers, name="redis-outage", keep_log_in=LOGS)
        try:
            with server.running():
                busy = wait_quiet(60)
                choose = chooser(users)
                capacity = measure_capacity(server.url, choose)
                rate = args.load * capacity["capacity_rps"]

                async def kill() -> str:
                    await asyncio.to_thread(redis.kill)
                    return f"redis-server on port {redis.port} killed -9"

                async def restart() -> str:
                    await asyncio.to_thread(redis.start)
                    return f"redis-server restarted on port {redis.port} (empty)"

                async def pause() -> str:
                    redis.pause()
                    return f"redis-server on port {redis.port} SIGSTOPped"

                async def resume() -> str:
                    redis.resume()
                    return f"redis-server on port {redis.port} SIGCONTed"

                k, r = args.kill_at, args.restart_at
                if args.fault == "kill":
                    actions = [(k, "kill -9 redis", kill), (r, "restart redis", restart)]
                else:
                    actions = [(k, "SIGSTOP redis", pause), (r, "SIGCONT redis", resume)]
                logger.info("open loop at %.0f rps for %.0f s", rate, args.duration)
                cpu_before = server.cpu_seconds()
                with CpuMonitor(server, limit_s=args.duration + 60) as cpu:
                    run = run_async(open_loop(server.url, rate, args.duration, choose, actions=actions))
                cpu.align(run.t0)
                cpu_after = server.cpu_seconds()
                ready = httpx.get(f"{server.url}/readyz", timeout=5).json()
            counts = log_counts(server.log)
        finally:
            server.stop()
            redis.kill()

    d, k, r = args.duration, args.kill_at, args.restart_at
    phases = {
        "before": summarize(run.samples, 0, k),
        "outage, first 2 s": summarize(run.samples, k, k + 2),
        "during": summarize(run.samples, k, r),
        "after, first 2 s": summarize(run.samples, r, r + 2),
        "after": summarize(run.samples, r, d),
        "last 10 s": summarize(run.samples, d - 10, d),
        "whole run": summarize(run.samples, 0, max(d, run.samples[-1].t + 1e-6)),
    }
    for s in phases.values():
        s["cpu"] = cpu.summary(*s["window_s"])
    whole, last = phases["whole run"], phases["last 10 s"]
    transport = sum(1 for s in run.samples if s.status == 0)
    criteria = [
        {"criterion": "zero non-2xx responses (whole run)", "measured": whole["non_2xx"],
         "met": whole["non_2xx"] == 0 and run.stragglers == 0},
        {"criterion": "zero transport errors / timeouts", "measured": transport, "met": transport == 0},
        {"criterion": "hit rate > 0 in the last 10 s", "measured": last["hit_rate"],
         "met": bool(last["hit_rate"])},
    ]  # fmt: skip
    if args.fault == "stop":  # the extra: a hung Redis must cost no more than the cache's short timeouts
        during = phases["during"]
        criteria.append({"criterion": "p99 during the fault < 500 ms", "measured": during["p99_ms"],
                         "met": during["p99_ms"] is not None and during["p99_ms"] < 500})  # fmt: skip
    result = {
        "name": out.stem,
        "fault": args.fault,
        "timestamp": stamp(),
        "machine": machine(),
        "busy_before_load": busy,
        "workers": args.workers,
        "artifact_id": artifact_id,
        "users": {"known": 450, "unknown": 50},
        "cache_ttl_s": 10,
        "capacity": capacity,
        "target_rps": round(rate, 1),
        "achieved_rps": round(len(run.samples) / run.seconds, 1),
        "kill_at": k,
        "restart_at": r,
        "duration_s": d,
        "stragglers": run.stragglers,
        "generator": generator_check(run),
        "marks": run.marks_json(),
        "phases": phases,
        "criteria": criteria,
        "met": all(c["met"] for c in criteria),
        "failures": [vars(s) for s in run.samples if not 200 <= s.status < 300][:50],
        "timeline_1s": timeline(run.samples, d),
        "cpu_1s": cpu.rows,
        "readyz_after": ready,
        "server_log_counts": counts,
        "worker_cpu_s_during_load": {
            str(pid): round(cpu_after.get(pid, 0.0) - cpu, 2) for pid, cpu in cpu_before.items()
        },
    }
    show(result)
    write_json(out, result)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
