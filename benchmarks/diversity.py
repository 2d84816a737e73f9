"""Measure what ``max_per_category`` costs in quality: hit rate and NDCG at 10 with and without it.

Usage: ``.venv/bin/python benchmarks/diversity.py [--users 5000] [--items 2000] [--days 90]
[--out benchmarks/results/diversity.json]``.

The demo's synthetic store (``make demo`` generates the same one), split chronologically as
training splits it (latest 20% of events held out), ALS at default settings fitted on the train
part, and every held-out user's top 10 scored with the evaluation the training job uses, once per
cap (none, 4, 3, 2, 1): the capped lists are ranked by the same ``top_items`` the service answers
``max_per_category`` with. Target (issue 13): the hit rate drops by at most 2% (relative).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/training.py would shadow the training package

CAPS = (None, 8, 7, 6, 5, 4, 3, 2, 1)


def measure(users: int, items: int, days: int) -> dict[str, Any]:
    """Return the figures at 10 for each cap, and each one's change against no cap."""
    import numpy as np
    import pandas as pd

    from features.dataset import load_dataset
    from features.io import resolve_format
    from features.synthetic import generate_store, write_store
    from training.evaluate import build_holdout, evaluate_model
    from training.job import TrainConfig, split_events
    from training.models import create_model

    with tempfile.TemporaryDirectory() as tmp:
        write_store(generate_store(users=users, items=items, days=days, seed=7), Path(tmp))
        dataset = load_dataset(Path(tmp) / "events.csv", resolve_format(), Path(tmp) / "items.csv")
    config = TrainConfig()
    holdout = build_holdout(split_events(dataset.events, config), config.weighting)
    model = create_model(config.model, **config.params)
    model.fit(holdout.train)
    category = dataset.interactions.item_meta["category"].fillna("").astype(str)
    codes = np.asarray(pd.factorize(category)[0], dtype=np.int64)
    codes[category.to_numpy() == ""] = -1
    rows = []
    for cap in CAPS:
        figures = evaluate_model(model, holdout, (10,), categories=codes, cap=cap)
        kept = ("hit_rate_at_10", "ndcg_at_10", "coverage_at_10", "users_evaluated")
        rows.append({"cap": cap, **{name: figures[name] for name in kept}})
    base = rows[0]
    for row in rows:
        for name in ("hit_rate_at_10", "ndcg_at_10"):
            row[f"{name}_change"] = round(row[name] / base[name] - 1, 4) if base[name] else None
    return {"model": config.model, "rows": rows}


def main() -> None:
    """Run, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/diversity.json")
    args = parser.parse_args()
    result = measure(args.users, args.items, args.days)
    result["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"{'max_per_category':<18}{'hit@10':>9}{'change':>9}{'ndcg@10':>9}{'change':>9}{'coverage':>10}")
    for row in result["rows"]:
        cap = "none" if row["cap"] is None else str(row["cap"])
        hit = f"{row['hit_rate_at_10']:>9.4f}{row['hit_rate_at_10_change']:>9.1%}"
        ndcg = f"{row['ndcg_at_10']:>9.4f}{row['ndcg_at_10_change']:>9.1%}"
        print(f"{cap:<18}{hit}{ndcg}{row['coverage_at_10']:>10.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
