"""Soak: steady mixed load on one worker for 10 minutes; the server's RSS must stay flat, nothing may fail.

Usage: ``.venv/bin/python benchmarks/reliability/soak.py [--minutes 10] [--warmup 60] [--load 0.5]
[--cache-max-entries 5000] [--no-events] [--out benchmarks/results/reliability/soak.json]``.

Setup (untimed): a synthetic store (12,000 users, 1,500 items) and an ALS model artifact; ``orderlift serve``
with 1 worker, the in-process cache bounded at ``--cache-max-entries`` (default 5,000, so the mix
below fills it to its bound during the warm-up), the embedded event log (a JSON-lines file in a
temp dir), no Redis. The mix: 60% GET /v1/users/{u}/recommendations (u among the 12,000 users plus
3,000 ids the model does not know, n in 5/10/20: ~45,000 distinct keys), 25% POST
/v1/cart/cross-sell (1-4 random items, a user id half the time), 15% POST /v1/events (1-5 events,
view/click/cart/purchase, fresh event ids, users from the same 15,000). Capacity of that mix (2xx
rate at c=32 over 5 s), then an open loop at ``--load`` x capacity for ``--minutes``.

The server process's VmRSS (/proc/<pid>/status) and /readyz are sampled every 10 s from the end of
the warm-up. Criteria: RSS growth from the first post-warm-up sample to the last < 10%; zero errors
(non-2xx or transport). ``--no-events`` (a diagnostic) leaves the events out: 70% recommendations,
30% cross-sell.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
from common import (
    LOGS,
    RESULTS,
    CpuMonitor,
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
    rss_kib,
    run_async,
    setup_logging,
    stamp,
    summarize,
    wait_quiet,
    write_json,
)

logger = logging.getLogger("benchmarks.reliability.soak")
TYPES = ("view", "view", "click", "cart", "purchase")


def make_chooser(users: list[str], items: list[str], events: bool = True) -> Any:
    """Return the request mix as a chooser (without events: 70% recommendations, 30% cross-sell)."""
    recs, carts = (0.60, 0.85) if events else (0.70, 1.0)

    def choose(rng: random.Random) -> Req:
        roll = rng.random()
        if roll < recs:
            user = rng.choice(users)
            return Req("recs", "GET", f"/v1/users/{user}/recommendations?n={rng.choice((5, 10, 20))}")
        if roll < carts:
            cart = [
                {"item_id": i, "quantity": rng.randint(1, 3)} for i in rng.sample(items, rng.randint(1, 4))
            ]
            body: dict[str, Any] = {"items": cart, "n": 5}
            if rng.random() < 0.5:
                body["user_id"] = rng.choice(users)
            return Req("cross-sell", "POST", "/v1/cart/cross-sell", body)
        user = rng.choice(users)
        events: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 5)):
            kind = rng.choice(TYPES)
            event: dict[str, Any] = {"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "user_id": user,
                     "item_id": rng.choice(items), "type": kind}  # fmt: skip
            if kind == "purchase":
                event |= {"order_id": f"o{rng.getrandbits(40):x}", "quantity": 1, "price": 9.99}
            events.append(event)
        return Req("events", "POST", "/v1/events", events)

    return choose


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))
    cap = result["capacity"]["capacity_rps"]
    title = (f"Soak: {result['minutes']:g} min, 1 worker, in-process cache "
             f"(max {result['cache_max_entries']:,}), {result['target_rps']:.0f} rps target "
             f"({result['load']:.0%} of {cap:.0f} rps at c=32)")  # fmt: skip
    rss = Table(title=title + " - RSS every 10 s after the warm-up (every 6th sample shown)")
    for col in ("t s", "RSS MiB", "vs first", "cache hits", "cache misses", "cache sets", "events accepted",
                "event log MiB"):  # fmt: skip
        rss.add_column(col, justify="right")
    samples = result["rss_samples"]
    first = samples[0]["rss_kib"] if samples else 1
    for k, s in enumerate(samples):
        if k % 6 and k != len(samples) - 1:
            continue
        cache = s.get("cache", {})
        log_mib = s.get("event_log_bytes", 0) / 2**20
        rss.add_row(f"{s['t']:.0f}", f"{s['rss_kib'] / 1024:.1f}", f"{s['rss_kib'] / first - 1:+.1%}",
                    f"{cache.get('hits', 0):,}", f"{cache.get('misses', 0):,}", f"{cache.get('sets', 0):,}",
                    f"{s.get('events_accepted', 0):,}", f"{log_mib:.1f}")  # fmt: skip
    console.print(rss)
    kinds = Table(title="Requests by kind (whole run)")
    for col in ("kind", "requests", "non-2xx", "p50 ms", "p90 ms", "p99 ms", "max ms", "hit rate"):
        kinds.add_column(col, justify="right")
    for name, s in result["by_kind"].items():
        kinds.add_row(name, f"{s['requests']:,}", str(s["non_2xx"]), fmt_ms(s["p50_ms"]), fmt_ms(s["p90_ms"]),
                      fmt_ms(s["p99_ms"]), fmt_ms(s["max_ms"]),
                      "-" if s["hit_rate"] is None else f"{s['hit_rate']:.1%}")  # fmt: skip
    console.print(kinds)
    console.print(criteria_table(result["criteria"]))
    console.print(f"achieved {result['achieved_rps']} rps; load generator: {result['generator']}; "
                  f"RSS slope {result['rss_slope_mib_per_min']} MiB/min (least squares)")  # fmt: skip
    console.print(f"cores used (mean/max): {result['cpu']}")


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y) points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the first RSS sample")
    parser.add_argument("--load", type=float, default=0.5, help="share of the measured capacity")
    parser.add_argument("--cache-max-entries", type=int, default=5000)
    parser.add_argument("--no-events", action="store_true", help="leave POST /v1/events out of the mix")
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args()
    setup_logging()
    duration = args.minutes * 60
    if duration <= args.warmup + 10:
        parser.error("--minutes must leave at least 10 s after the warm-up")

    with tempfile.TemporaryDirectory(prefix="orderlift-rel-soak-") as tmp:
        work = Path(tmp)
        store = make_store(work / "store", users=12_000, items=1_500, seed=4)
        artifact = make_artifact(store, work / "artifact")
        known, items, artifact_id = artifact_ids(artifact)
        users = known + [f"anon{k:05d}" for k in range(15_000 - len(known))]
        event_log = work / "events" / "events.jsonl"
        env = {
            "ORDERLIFT_MODEL_URI": str(artifact),
            "ORDERLIFT_CACHE_MAX_ENTRIES": str(args.cache_max_entries),
            "ORDERLIFT_EVENT_LOG": str(event_log),
        }
        choose = make_chooser(users, items, events=not args.no_events)
        server = Server(env, work, workers=1, name="soak", keep_log_in=LOGS)
        samples: list[dict[str, Any]] = []
        with server.running():
            pid = server.worker_pids()[0]
            busy = wait_quiet(60)
            capacity = measure_capacity(server.url, choose)
            rate = args.load * capacity["capacity_rps"]
            rss_at_start = rss_kib(pid)

            async def sample() -> dict[str, Any]:
                async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                    ready = (await client.get("/readyz")).json()
                row = {
                    "rss_kib": rss_kib(pid),
                    "cache": {k: ready["cache"].get(k) for k in ("hits", "misses", "sets", "errors")},
                    "events_accepted": ready["counters"].get("events_accepted"),
                    "event_log_bytes": event_log.stat().st_size if event_log.exists() else 0,
                }
                samples.append(row)
                return {"rss_kib": row["rss_kib"]}

            times = [args.warmup + 10 * k for k in range(int((duration - args.warmup) // 10) + 1)]
            times = [min(t, duration - 1) for t in times]
            actions = [(t, "sample", sample) for t in times]
            logger.info("soak at %.0f rps for %.0f s; %d RSS samples", rate, duration, len(actions))
            with CpuMonitor(server, limit_s=duration + 60) as cpu:
                run = run_async(open_loop(server.url, rate, duration, choose, actions=actions, seed=7))
            cpu.align(run.t0)
            ready_end = httpx.get(f"{server.url}/readyz", timeout=10).json()
            log_text = server.log.read_text(errors="replace")

    done = [m for m in run.marks if m.name == "sample" and isinstance(m.detail, dict)]  # failed ones left out
    for mark, row in zip(done, samples, strict=False):
        row["t"] = mark.t
    samples = [s for s in samples if "t" in s]
    first, last = samples[0]["rss_kib"], samples[-1]["rss_kib"]
    growth = last / first - 1
    end = max(duration, run.samples[-1].t + 1e-6)
    whole = summarize(run.samples, 0, end)
    transport = sum(1 for s in run.samples if s.status == 0)
    per_min = slope([(s["t"] / 60, s["rss_kib"] / 1024) for s in samples])
    criteria = [
        {"criterion": "RSS growth first -> last post-warm-up sample < 10%", "measured": f"{growth:+.2%}",
         "met": growth < 0.10},
        {"criterion": "zero non-2xx responses", "measured": whole["non_2xx"],
         "met": whole["non_2xx"] == 0 and run.stragglers == 0},
        {"criterion": "zero transport errors / timeouts", "measured": transport, "met": transport == 0},
    ]  # fmt: skip
    result = {
        "name": "soak",
        "timestamp": stamp(),
        "machine": machine(),
        "busy_before_load": busy,
        "minutes": args.minutes,
        "warmup_s": args.warmup,
        "load": args.load,
        "cache_max_entries": args.cache_max_entries,
        "events_in_mix": not args.no_events,
        "artifact_id": artifact_id,
        "distinct_users": len(users),
        "items": len(items),
        "capacity": capacity,
        "target_rps": round(rate, 1),
        "achieved_rps": round(len(run.samples) / run.seconds, 1),
        "generator": generator_check(run),
        "rss_kib_before_load": rss_at_start,
        "rss_first_kib": first,
        "rss_last_kib": last,
        "rss_growth": round(growth, 4),
        "rss_slope_mib_per_min": None if per_min is None else round(per_min, 3),
        "rss_samples": samples,
        "whole": whole,
        "by_kind": {k: summarize(run.samples, 0, end, kind=k) for k in ("recs", "cross-sell", "events")},
        "per_minute": [summarize(run.samples, m * 60, (m + 1) * 60) for m in range(int(end // 60))],
        "cpu": cpu.summary(),
        "cpu_per_minute": [cpu.summary(m * 60, (m + 1) * 60) for m in range(int(end // 60))],
        "criteria": criteria,
        "met": all(c["met"] for c in criteria),
        "failures": [vars(s) for s in run.samples if not 200 <= s.status < 300][:50],
        "readyz_end": ready_end,
        "server_log": {
            "tracebacks": log_text.count("Traceback"),
            "errors": log_text.count('"level": "error"'),
            "warnings": log_text.count('"level": "warning"'),
        },
    }
    show(result)
    write_json(args.out, result)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
