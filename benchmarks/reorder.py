"""Measure buy-again lists on Online Retail's next quarter against "most often bought" and "most recent".

Usage: ``.venv/bin/python benchmarks/reorder.py [--events ../shared/data/online_retail/online_retail.csv.gz]
[--top 10] [--out benchmarks/results/reorder.json]``.

The file is read with the ``online-retail`` preset (``features.validate``). Test: the history before
the last 90 days, scored against what each customer bought in those 90 days. Validation: the same,
cut 90 days earlier, inside the test's history. Every method ranks each customer's own past items
(``features.reorder``: the service's code): ``due`` (orders^a x due-ness over a 90-day horizon, a
and s chosen on validation by recall), ``due_only`` (a = 0, s = 1: the due date alone),
``most_often`` (orders, ties by recency) and ``most_recent`` (last purchase day, ties by orders).
Per customer with history who bought in the period: hit@k (any of the top k bought), precision@k
(hits / k) and recall@k (hits / distinct items bought), averaged. Also reported: the share of
next-quarter (customer, item) pairs bought before.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/training.py would shadow the training package

from features.ids import IdIndex  # noqa: E402
from features.io import resolve_format  # noqa: E402
from features.matrix import rows_of  # noqa: E402
from features.reorder import DAY_NS, ReorderParams, purchase_lines, reorder_history  # noqa: E402
from features.validate import load_events  # noqa: E402

DEFAULT_EVENTS = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"
PERIOD_DAYS = 90
GRID = [ReorderParams(a, s) for a in (0.0, 0.5, 1.0, 2.0) for s in (0.5, 1.0, 2.0, 4.0)]


def cut(events: pd.DataFrame, end: pd.Timestamp) -> dict[str, Any]:
    """Return the history before ``end - PERIOD_DAYS`` and each customer's items bought after it."""
    start = end - pd.Timedelta(days=PERIOD_DAYS)
    history = events[events["timestamp"] < start]
    later = events[(events["timestamp"] >= start) & (events["timestamp"] < end)]
    users = IdIndex.from_values(history["user_id"].astype(str).unique())
    items = IdIndex.from_values(history["item_id"].astype(str).unique())
    found = reorder_history(history, users, items)
    bought = purchase_lines(later)
    u = rows_of(bought["user_id"], users)
    i = rows_of(bought["item_id"], items)
    truth = pd.DataFrame({"u": u, "i": i}).drop_duplicates()
    truth = truth[truth["u"] >= 0]
    return {"reorder": found, "truth": truth, "today": start.value // DAY_NS, "users": len(users)}


def ranked(part: dict[str, Any], method: str, params: ReorderParams | None, k: int) -> pd.DataFrame:
    """Return each customer's top k past items under a method, as (u, i) rows."""
    found = part["reorder"]
    orders = found.orders
    rows = np.repeat(np.arange(orders.shape[0]), np.diff(orders.indptr))
    n, items = orders.data.astype(np.float64), orders.indices
    if method == "due":  # what the service ranks by
        everyone = np.arange(orders.shape[0])
        _, _, score, _ = found.due(everyone, part["today"], PERIOD_DAYS, params or ReorderParams())
    elif method == "most_often":
        score = n + 1e-6 * found.last_day / (found.last_day.max() + 1)
    else:
        score = found.last_day + 1e-3 * n / (n.max() + 1)
    order = np.lexsort((-score, rows))
    rank = np.arange(len(order)) - orders.indptr[rows[order]]
    top = order[rank < k]
    return pd.DataFrame({"u": rows[top], "i": items[top]})


def scores(part: dict[str, Any], top: pd.DataFrame, k: int) -> dict[str, float]:
    """Return hit@k, precision@k and recall@k averaged over customers with history who bought."""
    truth = part["truth"]
    hits = top.merge(truth, on=["u", "i"]).groupby("u").size()
    wanted = truth.groupby("u").size()
    hits = hits.reindex(wanted.index, fill_value=0)
    return {
        f"hit@{k}": round(float((hits > 0).mean()), 4),
        f"precision@{k}": round(float((hits / k).mean()), 4),
        f"recall@{k}": round(float((hits / wanted).mean()), 4),
        "customers": len(wanted),
    }


def main() -> None:
    """Tune on validation, score the test period once; print a table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/reorder.json")
    args = parser.parse_args()
    k = args.top
    events = load_events(args.events, resolve_format("online-retail")).events
    end = events["timestamp"].max() + pd.Timedelta(seconds=1)
    test, valid = cut(events, end), cut(events[events["timestamp"] < end - pd.Timedelta(days=PERIOD_DAYS)],
                                        end - pd.Timedelta(days=PERIOD_DAYS))  # fmt: skip
    tried = {f"a={p.frequency},s={p.tolerance}": scores(valid, ranked(valid, "due", p, k), k) for p in GRID}
    best_name = max(tried, key=lambda name: tried[name][f"recall@{k}"])
    best = GRID[list(tried).index(best_name)]
    result: dict[str, Any] = {"k": k, "period_days": PERIOD_DAYS, "chosen": best_name, "validation": tried}
    for name, part in (("validation", valid), ("test", test)):
        seen = part["truth"].merge(
            pd.DataFrame({"u": np.repeat(np.arange(part["reorder"].orders.shape[0]),
                                         np.diff(part["reorder"].orders.indptr)),
                          "i": part["reorder"].orders.indices}), on=["u", "i"])  # fmt: skip
        result[f"{name}_reorder_share"] = round(len(seen) / max(len(part["truth"]), 1), 4)
    result["test"] = {
        "due": scores(test, ranked(test, "due", best, k), k),
        "due_only": scores(test, ranked(test, "due", ReorderParams(0.0, 1.0), k), k),
        "most_often": scores(test, ranked(test, "most_often", None, k), k),
        "most_recent": scores(test, ranked(test, "most_recent", None, k), k),
    }
    result["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"chosen on validation: {best_name} (recall@{k} {tried[best_name][f'recall@{k}']})")
    print(f"next-quarter pairs bought before: validation {result['validation_reorder_share']:.1%}, "
          f"test {result['test_reorder_share']:.1%}")  # fmt: skip
    print(f"{'test, ' + str(result['test']['due']['customers']) + ' customers':<28}"
          f"{'hit@' + str(k):>9}{'precision@' + str(k):>14}{'recall@' + str(k):>11}")  # fmt: skip
    for method, row in result["test"].items():
        print(f"{method:<28}{row[f'hit@{k}']:>9}{row[f'precision@{k}']:>14}{row[f'recall@{k}']:>11}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
