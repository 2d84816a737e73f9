"""Measure what training does with dismissals: the next model must rank what shoppers dismissed lower.

Usage: ``.venv/bin/python benchmarks/dismissals.py [--users 5000] [--items 2000] [--share 0.2]
[--out benchmarks/results/dismissals.json]``.

The demo's synthetic store with planted dislikes: a ``share`` of shoppers dismiss the two best
sellers of their favourite category at the end of the window (``generate_store(dislike_share=)``).
ALS at default settings is fitted on every event twice, with ``--dismissals keep`` (dismissals
ignored) and ``exclude`` (the default: a dismissed pair adds nothing). For every planted pair:
the item's rank among all items in that shopper's scores (no item left out, so the pair is
judged as the model sees it), and how often it is in the shopper's top 10. Served answers never
show it at all (the artifact keeps the dismissed pairs and the service leaves them out).
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


def measure(users: int, items: int, share: float) -> dict[str, Any]:
    """Return, per way of training, where the planted dismissed items rank for their shoppers."""
    import numpy as np

    from features.dataset import load_dataset
    from features.io import resolve_format
    from features.matrix import Weighting
    from features.synthetic import generate_store, write_store
    from training.models import create_model

    with tempfile.TemporaryDirectory() as tmp:
        store = generate_store(users=users, items=items, days=90, seed=7, dislike_share=share)
        write_store(store, Path(tmp))
        out: dict[str, Any] = {"pairs": len(store.truth.dislikes)}
        for way in ("keep", "exclude"):
            weighting = Weighting(dismissals=way)  # type: ignore[arg-type]
            data = load_dataset(
                Path(tmp) / "events.csv", resolve_format(), Path(tmp) / "items.csv", weighting
            )
            inter = data.interactions
            model = create_model("als", report_loss=False)
            model.fit(inter.matrix)
            rows = inter.users.to_index(store.truth.dislikes[:, 0])
            cols = inter.items.to_index(store.truth.dislikes[:, 1])
            ok = (rows >= 0) & (cols >= 0)
            scores = model.score(inter.matrix[rows[ok]], rows[ok])
            mine = scores[np.arange(ok.sum()), cols[ok]]
            rank = (scores > mine[:, None]).sum(axis=1) + 1
            out[way] = {
                "mean_rank": round(float(rank.mean()), 1),
                "median_rank": float(np.median(rank)),
                "in_top_10": round(float((rank <= 10).mean()), 4),
                "pairs_scored": int(ok.sum()),
            }
    return out


def main() -> None:
    """Run, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/dismissals.json")
    args = parser.parse_args()
    result = measure(args.users, args.items, args.share) | {
        "at": datetime.now(UTC).isoformat(timespec="seconds")
    }
    print(f"{result['pairs']} planted dismissals; where the dismissed item ranks in its shopper's scores:")
    print(f"{'training':<10}{'mean rank':>11}{'median':>9}{'in top 10':>11}")
    for way in ("keep", "exclude"):
        row = result[way]
        print(f"{way:<10}{row['mean_rank']:>11}{row['median_rank']:>9}{row['in_top_10']:>11.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
