"""Choose ALS's and BPR's defaults across store shapes: every candidate scored on validation splits.

Usage: ``.venv/bin/python benchmarks/defaults.py [--skip-retail] [--out benchmarks/results/defaults.json]``.

Stores: Online Retail and synthetic stores of three shapes (small and dense; the demo's shape;
large and sparse, with few events per user). For each, the latest 20% of events is the test split,
set aside; the latest 20% of the rest is the validation split. Every candidate (a grid over
factors, regularisation and alpha for ALS; factors, learning rate and epochs for BPR) is fitted on
the validation split's train part and scored there (NDCG@10). A candidate's standing is its
validation NDCG@10 relative to today's defaults, store by store; the rule for a new default: the
best geometric mean over all stores, at least 2% above today's, with no store more than 5% below
today's defaults. The chosen and today's defaults are then each scored once on the test split.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before benchmarks/, whose training.py would shadow the package
ONLINE_RETAIL = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"
GRIDS: dict[str, dict[str, list[Any]]] = {
    "als": {"factors": [32, 64, 128], "regularization": [0.01, 0.1], "alpha": [1.0, 2.0, 5.0]},
    "bpr": {"factors": [64, 128], "learning_rate": [0.01, 0.05], "iterations": [100, 300]},
}
SHAPES = {  # name -> generate_store keywords
    "small-dense": {"users": 2000, "items": 300, "days": 60, "seed": 3},
    "demo": {"users": 5000, "items": 2000, "days": 90, "seed": 7},
    "large-sparse": {"users": 30000, "items": 15000, "days": 90, "seed": 5, "events_per_user": 12.0},
}
WORST, GAIN = 0.95, 1.02  # no store loses more than 5%; the geometric mean gains at least 2%


def stores(skip_retail: bool) -> dict[str, Any]:
    """Return name -> Dataset for every store."""
    import tempfile

    from features.dataset import load_dataset
    from features.io import resolve_format
    from features.synthetic import generate_store, write_store

    found = {}
    if not skip_retail:
        found["online-retail"] = load_dataset(ONLINE_RETAIL, resolve_format("online-retail"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in SHAPES.items():
            paths = write_store(generate_store(**shape), Path(tmp) / name)
            found[name] = load_dataset(paths["events"], resolve_format(), paths["items"])
    return found


def grid(family: str) -> list[dict[str, Any]]:
    """Return every point of a family's grid."""
    names = sorted(GRIDS[family])
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(GRIDS[family][n] for n in names))
    ]


def score(family: str, params: dict[str, Any], holdout: Any) -> float:
    """Fit one candidate on the holdout's train part; return its NDCG@10."""
    from training.evaluate import evaluate_model
    from training.models import create_model

    model = create_model(family, **params)
    model.fit(holdout.train)
    return float(evaluate_model(model, holdout, (10,))["ndcg_at_10"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-retail", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/defaults.json")
    args = parser.parse_args()
    from features.matrix import Weighting
    from features.split import chronological_split
    from training.evaluate import build_holdout
    from training.models import create_model

    began = time.perf_counter()
    data = stores(args.skip_retail)
    splits = {}
    for name, dataset in data.items():
        outer = chronological_split(dataset.events, test_fraction=0.2)
        inner = chronological_split(outer.train, test_fraction=0.2)
        splits[name] = (build_holdout(inner, Weighting()), build_holdout(outer, Weighting()))
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "families": {}}
    for family in GRIDS:
        today = {k: v for k, v in create_model(family).params.as_dict().items() if k in GRIDS[family]}
        points = grid(family)
        table = {name: {json.dumps(p, sort_keys=True): score(family, p, val) for p in points}
                 for name, (val, _) in splits.items()}  # fmt: skip
        key = json.dumps(today, sort_keys=True)
        rows = []
        for p in points:
            k = json.dumps(p, sort_keys=True)
            ratios = {name: table[name][k] / table[name][key] for name in table}
            geo = math.exp(sum(math.log(max(r, 1e-9)) for r in ratios.values()) / len(ratios))
            rows.append({"params": p, "geomean": geo, "worst": min(ratios.values()), "ratios": ratios,
                         "validation": {name: table[name][k] for name in table}})  # fmt: skip
        rows.sort(key=lambda r: -r["geomean"])
        eligible = [r for r in rows if r["worst"] >= WORST and r["geomean"] >= GAIN]
        chosen = eligible[0]["params"] if eligible else today
        test = {name: {"today": score(family, today, t), "chosen": score(family, chosen, t)}
                for name, (_, t) in splits.items()}  # fmt: skip
        results["families"][family] = {"today": today, "chosen": chosen, "leaderboard": rows, "test": test}
        print(f"\n{family}: today {today}, chosen {chosen}")
        print("| params | geomean vs today | worst store | " + " | ".join(table) + " |")
        print("|---|---|---|" + "---|" * len(table))
        for r in rows[:8]:
            cells = " | ".join(f"{r['validation'][n]:.4f}" for n in table)
            print(f"| {r['params']} | {r['geomean']:.3f} | {r['worst']:.3f} | {cells} |")
        print("test NDCG@10, today -> chosen: " + ", ".join(
            f"{n} {v['today']:.4f} -> {v['chosen']:.4f}" for n, v in test.items()))  # fmt: skip
    results["seconds"] = round(time.perf_counter() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
