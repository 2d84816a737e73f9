"""Simulate an A/B test of two registered models through the real service and read its report.

Usage: ``.venv/bin/python benchmarks/ab_simulation.py [--shoppers 2000] [--seed 7] [--p-fav 0.30]
[--p-other 0.03] [--p-cart 0.5] [--p-buy 0.6] [--out benchmarks/results/ab_simulation.json]``.

Setup: a synthetic store; two models trained on it and registered in a temporary MLflow SQLite
registry as ``orderlift@production`` (weak: ``popular``) and ``orderlift@candidate`` (strong:
``als``); uvicorn on 127.0.0.1 with ``ORDERLIFT_MODEL_URI=models:/orderlift@production`` and
``ORDERLIFT_VARIANTS=production:50,candidate:50`` (embedded event log in the temp dir, so one
worker). Shoppers are users of the store whose planted favourite category is ``user_category`` of
truth.json. Each asks ``GET /v1/users/{u}/recommendations?n=5``; every shown item gets an
impression carrying the answer's ``recommendation_id``, is clicked with ``--p-fav`` when its
category is the favourite (else ``--p-other``), a click is carted with ``--p-cart`` and a cart
bought with ``--p-buy`` (one order per shopper, quantity 1, the price shown). Events go through
``POST /v1/events`` in batches. Then ``GET /v1/experiments/report`` is printed and checked against
the simulator's own tallies. Deterministic by seed (each shopper's draws come from its own RNG).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MODELS = {"production": "popular", "candidate": "als"}
FLUSH_AT, DEADLINE_S = 500, 600.0
ROWS = ("users", "impressions", "clicks", "ctr", "add_to_carts", "orders", "purchasers",
        "conversion_rate", "aov", "revenue", "revenue_per_1000_impressions", "revenue_per_user")  # fmt: skip

logger = logging.getLogger("benchmarks.ab_simulation")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(env: dict[str, str], log: Path) -> Iterator[str]:
    """Run uvicorn (one worker) until /readyz says 200; yield its URL; kill its session at the end."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "service.app:app_from_env", "--factory", "--no-access-log",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, cwd=log.parent, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not become ready:\n{log.read_text()[-3000:]}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


def setup(work: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """Generate the store, train and register both models; return the users' favourite categories."""
    cli, store = str(BIN / "orderlift"), work / "store"

    def run(*cmd: str) -> None:
        done = subprocess.run([cli, *cmd], env=env, cwd=work, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"orderlift {cmd[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    run("generate", "--out", str(store), "--users", str(args.users), "--items", str(args.items),
        "--seed", str(args.seed))  # fmt: skip
    for alias, model in MODELS.items():
        logger.info("training %s as orderlift@%s", model, alias)
        run("train", "--events", str(store / "events.csv"), "--items", str(store / "items.csv"),
            "--model", model, "--holdout", "none", "--register", "orderlift", "--alias", alias,
            "--out", str(work / f"model-{alias}"))  # fmt: skip
    favourite: dict[str, str] = json.loads((store / "truth.json").read_text())["user_category"]
    return favourite


def shop(user: str, answer: dict[str, Any], favourite: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Return the events of one shopper shown ``answer``: impressions, clicks, carts, purchases."""
    rng = random.Random(f"{args.seed}:{user}")
    rec_id, events = answer["recommendation_id"], []
    for item in answer["items"]:
        base = {"user_id": user, "item_id": item["item_id"], "recommendation_id": rec_id}
        events.append({**base, "type": "impression"})
        if rng.random() >= (args.p_fav if item.get("category") == favourite else args.p_other):
            continue
        events.append({**base, "type": "click"})
        if rng.random() >= args.p_cart:
            continue
        line = {"quantity": 1, "price": item["price"] or 0.0}
        events.append({**base, "type": "cart", **line})
        if rng.random() < args.p_buy:
            events.append({**base, "type": "purchase", "order_id": f"o-{args.seed}-{user}", **line})
    for k, e in enumerate(events):
        e["event_id"] = f"ab-{args.seed}-{user}-{k}"
    return events


def simulate(url: str, favourite: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Serve every shopper and send their events; return the simulator's own tallies per variant."""
    shoppers = random.Random(args.seed).sample(sorted(favourite), args.shoppers)
    tally: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    pending: list[dict[str, Any]] = []
    began = time.monotonic()
    with httpx.Client(base_url=url, timeout=10.0) as client:

        def flush() -> None:
            resp = client.post("/v1/events", json=pending)
            body = resp.json()
            if resp.status_code != 202 or body["accepted"] != len(pending):
                raise RuntimeError(f"events not all accepted: {resp.status_code} {str(body)[:500]}")
            tally["_sent"]["events"] += len(pending)
            pending.clear()

        for user in shoppers:
            if time.monotonic() - began > DEADLINE_S:
                raise RuntimeError(f"simulation exceeded {DEADLINE_S:.0f} s")
            resp = client.get(f"/v1/users/{user}/recommendations", params={"n": 5})
            resp.raise_for_status()
            answer = resp.json()
            events = shop(user, answer, favourite[user], args)
            t = tally[answer["variant"]]
            t["users"] += 1
            t["source_" + answer["source"]] += 1
            t["favourite_shown"] += sum(i.get("category") == favourite[user] for i in answer["items"])
            for e in events:
                t[e["type"]] += 1
                t["revenue"] += e["price"] if e["type"] == "purchase" else 0.0
            t["orders"] += any(e["type"] == "purchase" for e in events)
            pending.extend(events)
            if len(pending) >= FLUSH_AT:
                flush()
        if pending:
            flush()
        report = client.get("/v1/experiments/report").json()
    tally["_sent"]["seconds"] = time.monotonic() - began
    tallies = {
        k: {m: round(x, 2) if m == "revenue" else int(x) for m, x in v.items()} for k, v in tally.items()
    }
    return {"report": report, "tally": tallies}


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """Say which variant earns more per user and whether the interval of the difference excludes 0."""
    control = report["control"]
    other = next(v for v in report["variants"] if v != control)
    rpu = report["variants"][other]["vs_control"]["revenue_per_user"]
    better = other if (rpu["diff"] or 0.0) > 0 else control
    excludes = rpu["ci_low"] is not None and (rpu["ci_low"] > 0 or rpu["ci_high"] < 0)
    return {"control": control, "challenger": other, "earns_more": better,
            "revenue_per_user_diff": rpu["diff"], "ci": [rpu["ci_low"], rpu["ci_high"]],
            "interval_excludes_zero": excludes}  # fmt: skip


def check(report: dict[str, Any], tally: dict[str, Any]) -> list[str]:
    """Compare the report's counts with what the simulator sent; return the mismatches."""
    pairs = {"users": "users", "impressions": "impression", "clicks": "click", "add_to_carts": "cart",
             "orders": "orders"}  # fmt: skip
    bad = []
    for name, got in report["variants"].items():
        mine = tally.get(name, {})
        bad += [f"{name}.{k}: report {got[k]} vs sent {mine.get(t, 0):.0f}" for k, t in pairs.items()
                if got[k] != round(mine.get(t, 0))]  # fmt: skip
        if abs(got["revenue"] - mine.get("revenue", 0.0)) > 0.01:
            bad.append(f"{name}.revenue: report {got['revenue']:.2f} vs sent {mine.get('revenue', 0):.2f}")
    return bad


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    report, v = result["report"], result["verdict"]
    control, other = v["control"], v["challenger"]
    a, b = report["variants"][control], report["variants"][other]
    title = (f"A/B report (GET /v1/experiments/report): {other} ({MODELS.get(other)}) vs control "
             f"{control} ({MODELS.get(control)}), {report['confidence']:.0%} intervals")  # fmt: skip
    table = Table(title=title)
    for col in ("metric", control, other, f"{other} - {control}", "interval", "excludes 0?"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in ROWS:
        cmp = (b["vs_control"] or {}).get(row)
        cells = ["", "", ""]
        if cmp:
            lo, hi = cmp["ci_low"], cmp["ci_high"]
            cells = [fmt(cmp["diff"]), f"[{fmt(lo)}, {fmt(hi)}]",
                     "-" if lo is None else "[green]yes" if lo > 0 or hi < 0 else "[yellow]no"]  # fmt: skip
        table.add_row(row, fmt(a[row]), fmt(b[row]), *cells)
    console = Console(width=max(Console().width, 130))
    console.print(table)
    sign = "excludes" if v["interval_excludes_zero"] else "does NOT exclude"
    console.print(f"[bold]{v['earns_more']}[/] ({MODELS.get(v['earns_more'])}) earns more: revenue per "
                  f"user {fmt(v['revenue_per_user_diff'])} for {other}, interval "
                  f"[{fmt(v['ci'][0])}, {fmt(v['ci'][1])}] {sign} 0.")  # fmt: skip
    mism = result["mismatches"]
    console.print("report matches the events sent" if not mism else f"[red]MISMATCHES: {mism}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=2000)
    parser.add_argument("--users", type=int, default=3000, help="users of the synthetic store")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--p-fav", type=float, default=0.30, help="click prob., favourite category")
    parser.add_argument("--p-other", type=float, default=0.03, help="click prob., other categories")
    parser.add_argument("--p-cart", type=float, default=0.5, help="cart prob. given a click")
    parser.add_argument("--p-buy", type=float, default=0.6, help="purchase prob. given a cart")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/ab_simulation.json")
    args = parser.parse_args()
    if not 0 < args.shoppers <= min(args.users, 50_000):
        parser.error("need 0 < --shoppers <= --users (and at most 50,000)")
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler()])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="orderlift-ab-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERLIFT_", "MLFLOW_"))}
        env.update(MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", OPENBLAS_NUM_THREADS="1")
        favourite = setup(work, args, env)
        env.update(ORDERLIFT_MODEL_URI="models:/orderlift@production", ORDERLIFT_RELOAD_INTERVAL_S="0",
                   ORDERLIFT_VARIANTS="production:50,candidate:50",
                   ORDERLIFT_EVENT_LOG=str(work / "events" / "events.jsonl"))  # fmt: skip
        with server(env, work / "server.log") as url:
            ready = httpx.get(f"{url}/readyz", timeout=5).json()
            logger.info("serving %s", {k: v["version"] for k, v in ready["variants"].items()})
            result = simulate(url, favourite, args)
    result["verdict"] = verdict(result["report"])
    result["mismatches"] = check(result["report"], result["tally"])
    keys = ("shoppers", "users", "items", "seed", "p_fav", "p_other", "p_cart", "p_buy")
    result["setup"] = {k: getattr(args, k) for k in keys} | {
        "models": MODELS,
        "seconds": round(time.monotonic() - began, 1),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    show(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s in %.0f s", args.out, time.monotonic() - began)


if __name__ == "__main__":
    main()
