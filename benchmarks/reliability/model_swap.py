"""Swap the served model under load by repointing a symlink and POST /v1/admin/reload: no request fails.

Usage: ``.venv/bin/python benchmarks/reliability/model_swap.py [--duration 60] [--every 10]
[--load 0.7] [--workers 1] [--reload-interval 0] [--out benchmarks/results/reliability/model_swap.json]``.

Setup (untimed): a synthetic store (3,000 users, 800 items) and two ALS model artifacts of it (16 factors x 5
iterations, 24 x 6: two artifact ids); ORDERLIFT_MODEL_URI is a symlink ``current`` to the first.
``orderlift serve`` with 1 worker by default: POST /v1/admin/reload reaches the one worker that takes
it, so with 1 worker every request after the reload's answer must see the new version. The
in-process cache (no Redis); ORDERLIFT_RELOAD_INTERVAL_S=0 (no polling: only the admin reload swaps,
so the versions over time are deterministic); /v1 needs an API key, reload an admin key. With
``--workers 2 --reload-interval 5`` the other worker catches up by polling (versions then mix).

Load: GET /v1/users/{u}/recommendations over 500 users (450 known, 50 unknown), open loop at
``--load`` x capacity (2xx rate at c=32 over 5 s) for ``--duration`` s. Every ``--every`` s the
symlink is atomically repointed at the other artifact (a new symlink, then ``os.replace``) and
POST /v1/admin/reload is sent. ``model_version`` is read from every response body.

Criteria: zero non-2xx; every reload answered 200 with status "loaded"; with 1 worker, no request
sent after a reload answered is served by the previous version unless it says so: a warm swap
answers a miss from the old version's cached answer (``X-Cache: previous``) while the new one is
computed, and those are counted apart ("bridged").
"""

from __future__ import annotations

import argparse
import logging
import os
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
    LoadRun,
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
    wait_quiet,
    write_json,
)

logger = logging.getLogger("benchmarks.reliability.model_swap")
API_KEY, ADMIN_KEY = "reliability-api-key", "reliability-admin-key"


def repoint(link: Path, target: Path) -> None:
    """Atomically make ``link`` point at ``target``: a new symlink renamed over the old one."""
    fresh = link.with_name(link.name + ".new")
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(target)
    os.replace(fresh, link)


def versions_over_time(run: LoadRun, seconds: float) -> list[dict[str, Any]]:
    """Per second: how many responses each version served."""
    out = []
    for k in range(int(seconds)):
        counts: dict[str, int] = {}
        for s in run.samples:
            if k <= s.t < k + 1 and s.version:
                counts[s.version] = counts.get(s.version, 0) + 1
        out.append({"second": k, "versions": counts})
    return out


def analyse_swaps(run: LoadRun, names: dict[str, str]) -> list[dict[str, Any]]:
    """For each swap: the reload's answer, when the new version first/last-old showed, p99 around it."""
    rows = []
    marks = [m for m in run.marks if m.name.startswith("swap")]
    for i, mark in enumerate(marks):
        detail = mark.detail if isinstance(mark.detail, dict) else {"error": str(mark.detail)}
        new, old = detail.get("serving"), detail.get("previous")
        nxt = marks[i + 1].t if i + 1 < len(marks) else float("inf")
        after = [s for s in run.samples if mark.t_end <= s.t < nxt]
        old_answers = [s for s in after if s.version is not None and s.version != new]
        stale = [s for s in old_answers if s.cache != "previous"]  # bridged answers say so
        first_new = next((s.t for s in run.samples if s.t >= mark.t and s.version == new), None)
        around = summarize(run.samples, mark.t - 0.5, mark.t + 2.0)
        rows.append({
            "t": mark.t, "reload_answered_at": mark.t_end,
            "reload_ms": round((mark.t_end - mark.t) * 1000, 1),
            "to": names.get(new or "", new), "from": names.get(old or "", old),
            "reload_status": detail.get("status_code"), "outcome": detail.get("outcome"),
            "first_new_version_sent_at": first_new, "stale_after_reload": len(stale),
            "bridged_after_reload": len(old_answers) - len(stale),
            "around_p50_ms": around["p50_ms"], "around_p99_ms": around["p99_ms"],
            "around_max_ms": around["max_ms"], "around_non_2xx": around["non_2xx"],
        })  # fmt: skip
    return rows


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))
    cap = result["capacity"]["capacity_rps"]
    title = (f"Model swap under load: {result['workers']} worker(s) (poll every "
             f"{result['reload_interval_s']:g} s, 0 = never), {result['target_rps']:.0f} rps target "
             f"(capacity {cap:.0f} rps at c=32); symlink repointed + POST /v1/admin/reload every "
             f"{result['every_s']:g} s")  # fmt: skip
    table = Table(title=title)
    for col in ("t s", "from -> to", "reload", "reload ms", "first new at s", "stale after reload",
                "p50 ms [-0.5,+2)", "p99 ms [-0.5,+2)", "max ms", "non-2xx"):  # fmt: skip
        table.add_column(col, justify="right")
    for r in result["swaps"]:
        table.add_row(f"{r['t']:.1f}", f"{r['from']} -> {r['to']}", f"{r['reload_status']} {r['outcome']}",
                      f"{r['reload_ms']:.0f}", "-" if r["first_new_version_sent_at"] is None
                      else f"{r['first_new_version_sent_at']:.2f}", str(r["stale_after_reload"]),
                      fmt_ms(r["around_p50_ms"]), fmt_ms(r["around_p99_ms"]), fmt_ms(r["around_max_ms"]),
                      str(r["around_non_2xx"]))  # fmt: skip
    console.print(table)
    phases = Table(title="Latency: whole run vs away from swaps")
    for col in ("window", "requests", "non-2xx", "p50 ms", "p99 ms", "max ms"):
        phases.add_column(col, justify="right")
    for name, s in result["phases"].items():
        phases.add_row(name, f"{s['requests']:,}", str(s["non_2xx"]), fmt_ms(s["p50_ms"]),
                       fmt_ms(s["p99_ms"]), fmt_ms(s["max_ms"]))  # fmt: skip
    console.print(phases)
    timeline = Table(title="Versions served over time (responses per 5 s, by the artifact that answered)")
    timeline.add_column("seconds")
    for name in result["artifacts"]:
        timeline.add_column(name, justify="right")
    for k in range(0, len(result["versions_over_time"]), 5):
        chunk = result["versions_over_time"][k : k + 5]
        counts = {v: sum(c["versions"].get(v, 0) for c in chunk) for v in result["artifacts"].values()}
        timeline.add_row(f"{k}-{k + len(chunk)}", *(f"{counts[v]:,}" for v in result["artifacts"].values()))
    console.print(timeline)
    console.print(criteria_table(result["criteria"]))
    console.print(f"achieved {result['achieved_rps']} rps; load generator: {result['generator']}")
    console.print(f"cores used (mean/max): {result['cpu']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--load", type=float, default=0.7, help="share of the measured capacity")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--reload-interval", type=float, default=0.0, help="ORDERLIFT_RELOAD_INTERVAL_S")
    parser.add_argument("--out", type=Path, default=RESULTS / "model_swap.json")
    args = parser.parse_args()
    setup_logging()

    with tempfile.TemporaryDirectory(prefix="orderlift-rel-swap-") as tmp:
        work = Path(tmp)
        store = make_store(work / "store")
        artifacts = [
            make_artifact(store, work / "artifact-a", 16, 5),
            make_artifact(store, work / "artifact-b", 24, 6),
        ]
        known, _, id_a = artifact_ids(artifacts[0])
        id_b = artifact_ids(artifacts[1])[2]
        names = {f"artifact-{id_a}": "A", f"artifact-{id_b}": "B"}
        if id_a == id_b:
            raise RuntimeError("the two artifacts have the same artifact id")
        link = work / "current"
        repoint(link, artifacts[0])
        users = random.Random(5).sample(known, 450) + [f"new{k:03d}" for k in range(50)]
        env = {
            "ORDERLIFT_MODEL_URI": str(link),
            "ORDERLIFT_API_KEYS": API_KEY,
            "ORDERLIFT_ADMIN_KEYS": ADMIN_KEY,
            "ORDERLIFT_RELOAD_INTERVAL_S": f"{args.reload_interval:g}",
            "ORDERLIFT_EVENT_LOG": str(work / "events.jsonl"),
        }
        headers = {"X-API-Key": API_KEY}

        def choose(rng: random.Random) -> Req:
            return Req("recs", "GET", f"/v1/users/{rng.choice(users)}/recommendations?n=10")

        server = Server(env, work, workers=args.workers, name="model-swap", keep_log_in=LOGS)
        with server.running():
            busy = wait_quiet(60)
            capacity = measure_capacity(server.url, choose, headers=headers)
            rate = args.load * capacity["capacity_rps"]
            state = {"current": 0}

            async def swap() -> dict[str, Any]:
                previous = artifacts[state["current"]]
                state["current"] = 1 - state["current"]
                repoint(link, artifacts[state["current"]])
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as admin:
                    resp = await admin.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
                body = resp.json()
                outcome = body.get("variants", {}).get("default", {})
                return {"status_code": resp.status_code, "outcome": outcome.get("status"),
                        "serving": body.get("serving", {}).get("default"),
                        "previous": f"artifact-{artifact_ids(previous)[2]}", "body": body}  # fmt: skip

            swaps = int((args.duration - 1) // args.every)
            actions = [(args.every * (k + 1), f"swap {k + 1}", swap) for k in range(swaps)]
            logger.info("open loop at %.0f rps for %.0f s, %d swaps", rate, args.duration, swaps)
            with CpuMonitor(server, limit_s=args.duration + 60) as cpu:
                run = run_async(open_loop(server.url, rate, args.duration, choose, headers=headers,
                                          actions=actions, parse_version=True))  # fmt: skip
            cpu.align(run.t0)
            ready = httpx.get(f"{server.url}/readyz", timeout=5, headers={"X-API-Key": ADMIN_KEY}).json()

    swap_rows = analyse_swaps(run, names)
    swap_times = [m.t for m in run.marks]

    def near(t: float) -> bool:
        return any(at - 0.5 <= t < at + 2.0 for at in swap_times)

    end = max(args.duration, run.samples[-1].t + 1e-6)
    phases = {
        "whole run": summarize(run.samples, 0, end),
        "away from swaps": summarize([s for s in run.samples if not near(s.t)], 0, end),
        "within [-0.5, +2) s of a swap": summarize([s for s in run.samples if near(s.t)], 0, end),
    }
    whole = phases["whole run"]
    transport = sum(1 for s in run.samples if s.status == 0)
    stale = sum(r["stale_after_reload"] for r in swap_rows)
    bridged = sum(r["bridged_after_reload"] for r in swap_rows)
    reloads_ok = sum(1 for r in swap_rows if r["reload_status"] == 200 and r["outcome"] == "loaded")
    criteria = [
        {"criterion": "zero non-2xx responses", "measured": whole["non_2xx"],
         "met": whole["non_2xx"] == 0 and run.stragglers == 0},
        {"criterion": "zero transport errors / timeouts", "measured": transport, "met": transport == 0},
        {"criterion": "every reload 200 + loaded", "measured": f"{reloads_ok}/{len(swap_rows)}",
         "met": reloads_ok == len(swap_rows) and len(swap_rows) > 0},
    ]  # fmt: skip
    if args.workers == 1:
        criteria.append({"criterion": "no unmarked old version after the reload answered (1 worker)",
                         "measured": stale, "met": stale == 0})  # fmt: skip
        criteria.append({"criterion": "old answers bridging the swap (X-Cache: previous; info)",
                         "measured": bridged, "met": True})  # fmt: skip
    result = {
        "name": "model_swap",
        "timestamp": stamp(),
        "machine": machine(),
        "busy_before_load": busy,
        "workers": args.workers,
        "every_s": args.every,
        "reload_interval_s": args.reload_interval,
        "artifacts": {"A": f"artifact-{id_a}", "B": f"artifact-{id_b}"},
        "capacity": capacity,
        "target_rps": round(rate, 1),
        "achieved_rps": round(len(run.samples) / run.seconds, 1),
        "generator": generator_check(run),
        "stragglers": run.stragglers,
        "swaps": swap_rows,
        "phases": phases,
        "criteria": criteria,
        "met": all(c["met"] for c in criteria),
        "failures": [vars(s) for s in run.samples if not 200 <= s.status < 300][:50],
        "versions_over_time": versions_over_time(run, end),
        "cpu": cpu.summary(),
        "cpu_1s": cpu.rows,
        "marks": run.marks_json(),
        "readyz_after": ready,
    }
    show(result)
    write_json(args.out, result)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
