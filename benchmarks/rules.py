"""Benchmark what merchandising rules cost a cache-miss answer, with 100 rules in force.

Usage: ``.venv/bin/python benchmarks/rules.py [--items 20000] [--users 20000] [--seconds 5]
[--out benchmarks/results/rules.json]``.

Setup (untimed): a synthetic store, an ALS model and its artifact (default training settings, no
holdout), an ``Engine`` as the service builds it, and two sets of 100 rules in force for the
placement ``home``: ``items``, 50 items hidden, 20 boosted, 20 buried, 10 pinned; ``categories``,
40 items hidden, 20 boosted, 20 buried, 10 pinned, and 10 whole categories buried or boosted
(about 60% of the catalog scaled: a heavy case).
Timed in this one process, alternating per call (so drift hits both alike): a known user's
recommendations (``Scorer.for_user``) and a new 20-item cart's cross-sell (``CrossSeller.suggest``),
each with no rules and with the 100 rules (``RuleBook.shape`` as every request calls it, then the
answer), at default settings otherwise. Target (issue 13): the rules add under 10% to a miss.
Also reported: compiling the 100 rules into one catalog's rows (once per rule edit and placement).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/training.py would shadow the training package

logger = logging.getLogger("benchmarks.rules")


def _summary(seconds: list[float]) -> dict[str, float]:
    s = sorted(seconds)
    got = {"p50": s[len(s) // 2], "p90": s[int(0.9 * len(s))], "mean": statistics.fmean(s)}
    return {k: round(v * 1e6, 1) for k, v in got.items()}


def _rules(artifact: Any, categories_too: bool) -> list[Any]:
    """Return 100 rules over the catalog, all in force for ``home``."""
    import numpy as np

    from service.ops_schemas import Rule

    rng = np.random.default_rng(5)
    ids = [str(i) for i in rng.permutation(artifact.items.ids)[:90]]
    categories = [c for c in artifact.item_meta["category"].unique().tolist() if c][:10]
    now = datetime.now(UTC)
    specs: list[dict[str, Any]] = []
    specs += [{"action": "hide", "item_ids": [i]} for i in ids[:40]]
    specs += [{"action": "boost", "item_ids": [i], "factor": 3.0} for i in ids[40:60]]
    specs += [{"action": "bury", "item_ids": [i], "factor": 0.3} for i in ids[60:80]]
    specs += [{"action": "pin", "item_ids": [i], "position": 2 * k + 1} for k, i in enumerate(ids[80:85])]
    specs += [{"action": "pin", "item_ids": [i], "position": 2 * k + 1, "placements": ["cart"]}
              for k, i in enumerate(ids[85:90])]  # fmt: skip
    if categories_too:
        specs += [{"action": "bury", "category": c, "factor": 0.8} for c in categories[:5]]
        specs += [{"action": "boost", "category": c, "factor": 1.2} for c in categories[5:10]]
    else:
        specs += [{"action": "hide", "item_ids": [i]} for i in rng.permutation(artifact.items.ids)[90:100]]
    return [
        Rule(**{"placements": ["home"], **s}, id=f"r{k:012x}", created_at=now) for k, s in enumerate(specs)
    ]


def _alternate(calls: dict[str, Callable[[int], object]], rows: list[int], seconds: float) -> dict[str, Any]:
    """Time each call per row, alternating which goes first; return per-call summaries (us)."""
    clock = time.perf_counter
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for row in rows[:100]:  # warm-up
        for name in names:
            calls[name](row)
    deadline = clock() + seconds
    for i, row in enumerate(rows[100:]):
        for name in names if i % 2 else names[::-1]:
            began = clock()
            calls[name](row)
            times[name].append(clock() - began)
        if clock() > deadline:
            break
    out: dict[str, Any] = {name: _summary(t) for name, t in times.items()}
    out["calls"] = len(times[names[0]])
    plain, ruled = out[names[0]], out[names[1]]
    out["added_p50"] = round(ruled["p50"] / plain["p50"] - 1, 4)
    out["added_mean"] = round(ruled["mean"] / plain["mean"] - 1, 4)
    return out


def measure(items: int, users: int, seconds: float) -> dict[str, Any]:
    """Build the artifact and the engine (untimed), then time misses with and without the rules."""
    import numpy as np

    from features.dataset import load_dataset
    from features.io import resolve_format
    from features.synthetic import generate_store, write_store
    from service.config import Settings
    from service.engine import Engine
    from service.loading import load
    from service.rules import PLAIN, RuleBook
    from service.scorer import Filters
    from training.job import TrainConfig, run_training

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_store(generate_store(users=users, items=items, days=90, seed=7), work / "store")
        dataset = load_dataset(work / "store/events.csv", resolve_format(), work / "store/items.csv")
        run_training(dataset, TrainConfig(holdout=None), work / "model", {"fingerprint": "bench"})
        loaded = load(str(work / "model"), "sqlite:///unused.db", verify=False)
        served = over_http(work, work / "model", loaded.artifact)
    engine = Engine.build(loaded, Settings())
    scorer, seller = engine.scorer, engine.crosssell
    rng = np.random.default_rng(11)
    user_rows = rng.permutation(len(scorer.users)).tolist()
    popular = np.argsort(-seller.assoc.item_counts)[:2000]
    carts = [rng.choice(popular, 20, replace=False) for _ in range(5000)]
    ids, user = scorer.catalog.ids, scorer.users.ids

    def cart(k: int) -> list[tuple[str, int]]:
        return [(str(ids[r]), 1) for r in carts[k % len(carts)]]

    out = {}
    for name, categories_too in (("item_rules", False), ("category_rules", True)):
        rules = _rules(loaded.artifact, categories_too)
        began = time.perf_counter()
        compiled = RuleBook(tuple(rules), 1).shape(scorer.catalog, "compile-only", "user", "home")
        compile_ms = (time.perf_counter() - began) * 1e3
        book = RuleBook(tuple(rules), 2)

        def shaped(endpoint: str, book: Any = book) -> Any:
            return book.shape(scorer.catalog, scorer.version, endpoint, "home")

        recommendations = _alternate(
            {
                "plain": lambda r: scorer.for_user(str(user[r]), 10, Filters(), shape=PLAIN),
                "rules": lambda r, shaped=shaped: scorer.for_user(
                    str(user[r]), 10, Filters(), shape=shaped("user")
                ),
            },
            user_rows,
            seconds,
        )
        carts_timed = _alternate(
            {
                "plain": lambda k: seller.suggest(cart(k), 10, shape=PLAIN),
                "rules": lambda k, shaped=shaped: seller.suggest(cart(k), 10, shape=shaped("cross_sell")),
            },
            list(range(len(carts))),
            seconds,
        )
        out[name] = {
            "rules": len(rules),
            "hidden_rows": len(compiled.adjustment.hidden),
            "scaled_rows": len(compiled.adjustment.scaled),
            "pins": len(compiled.adjustment.pins),
            "compile_ms": round(compile_ms, 2),
            "user_recommendations_us": recommendations,
            "cross_sell_us": carts_timed,
        }
    out["over_http"] = served
    return out


def over_http(work: Path, model: Path, artifact: Any, requests: int = 500, rounds: int = 3) -> dict[str, Any]:
    """Return the server CPU per cache-miss recommendation over HTTP, without and with each rule set.

    ``orderlift serve`` (one worker, defaults) answers distinct users one at a time (every answer a
    miss); the worker's CPU time from /proc, divided by the requests, is what an answer costs it.
    The three cases take turns, ``rounds`` times, so the cache's growth weighs on each alike.
    """
    import httpx
    import numpy as np

    from tests.harness import Server

    server = Server({"ORDERLIFT_MODEL_URI": str(model), "ORDERLIFT_RELOAD_INTERVAL_S": "0"}, work).start()
    users = iter(str(u) for u in artifact.users.ids)
    popular = artifact.items.ids[np.argsort(-artifact.copurchase.item_counts)[:2000]]
    rng = np.random.default_rng(3)
    carts = iter([{"items": [{"item_id": str(i)} for i in rng.choice(popular, 20, replace=False)],
                   "placement": "home"} for _ in range(10 * requests * rounds)])  # fmt: skip
    spent: dict[str, list[float]] = {"none": [], "item_rules": [], "category_rules": []}
    carted: dict[str, list[float]] = {name: [] for name in spent}
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            for _ in range(200):  # warm-up
                client.get(f"/v1/users/{next(users)}/recommendations", params={"placement": "home"})
            for _ in range(rounds):
                for name in spent:
                    for rule in client.get("/v1/admin/rules").json()["rules"]:
                        client.delete(f"/v1/admin/rules/{rule['id']}")
                    for rule in [] if name == "none" else _rules(artifact, name == "category_rules"):
                        body = rule.model_dump(mode="json", exclude={"id", "created_at"})
                        assert client.post("/v1/admin/rules", json=body).status_code == 201
                    time.sleep(1.0)  # in force everywhere
                    before = sum(server.cpu_seconds().values())
                    for _ in range(requests):
                        answer = client.get(
                            f"/v1/users/{next(users)}/recommendations", params={"placement": "home"}
                        )
                        assert answer.status_code == 200 and answer.headers["x-cache"] == "miss"
                    spent[name].append((sum(server.cpu_seconds().values()) - before) / requests)
                    before = sum(server.cpu_seconds().values())
                    for _ in range(requests):
                        answer = client.post("/v1/cart/cross-sell", json=next(carts))
                        assert answer.status_code == 200 and answer.headers["x-cache"] == "miss"
                    carted[name].append((sum(server.cpu_seconds().values()) - before) / requests)
    finally:
        server.stop()
    out: dict[str, Any] = {}
    for name in spent:
        recs, cart = statistics.fmean(spent[name]) * 1e6, statistics.fmean(carted[name]) * 1e6
        out[name] = {"recommendations_cpu_us": round(recs, 1), "cross_sell_cpu_us": round(cart, 1)}
    for name in ("item_rules", "category_rules"):
        for key in ("recommendations_cpu_us", "cross_sell_cpu_us"):
            out[name][f"{key}_added"] = round(out[name][key] / out["none"][key] - 1, 4)
    return out


def main() -> None:
    """Run and print a table; write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/rules.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = measure(args.items, args.users, args.seconds)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
    result |= {"items": args.items, "users": args.users, "at": when, "machine": machine}
    header = ("rules", "answer (cache miss)", "plain p50 us", "rules p50 us", "added p50", "added mean")
    print(f"{header[0]:<16}{header[1]:<26}{header[2]:>14}{header[3]:>14}{header[4]:>11}{header[5]:>12}")
    for scenario in ("item_rules", "category_rules"):
        found = result[scenario]
        for name, key in (
            ("user recommendations", "user_recommendations_us"),
            ("20-item cart cross-sell", "cross_sell_us"),
        ):
            row = found[key]
            print(f"{scenario:<16}{name:<26}{row['plain']['p50']:>14}{row['rules']['p50']:>14}"
                  f"{row['added_p50']:>10.1%}{row['added_mean']:>12.1%}")  # fmt: skip
        rows = f"{found['hidden_rows']} hidden, {found['scaled_rows']} scaled rows, {found['pins']} pins"
        print(f"{'':<16}100 rules compiled in {found['compile_ms']} ms ({rows})")
    http = result["over_http"]
    print("over HTTP, server CPU per cache-miss answer (us): recommendations, 20-item cart cross-sell")
    for scenario in ("none", "item_rules", "category_rules"):
        row = http[scenario]
        recs, cart = row["recommendations_cpu_us"], row["cross_sell_cpu_us"]
        added = ""
        if scenario != "none":
            added = f" ({row['recommendations_cpu_us_added']:+.1%}, {row['cross_sell_cpu_us_added']:+.1%})"
        print(f"{'':<4}{scenario:<16}{recs:>9}{cart:>9}{added}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
