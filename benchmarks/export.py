"""Benchmark the campaign export: time against a hand-written script, and memory as users grow.

Usage: ``.venv/bin/python benchmarks/export.py [--users 20000,100000] [--items 2000]
[--out benchmarks/results/export.json]``.

Setup (untimed), per store size: a synthetic store and an ALS model at default training settings
(no holdout). Timed, each in a fresh child process that first loads the model as the command does:
``ours``, ``service.export.export_recommendations`` (6 items per user, placement ``email``, CSV and
Parquet); ``bare``, the script a data scientist would write: implicit's ``recommend`` for every user
at once (the same factors, already-bought items filtered) and ``pandas.to_csv``. Reported: seconds,
the ratio ours / bare, and each child's peak RSS (VmHWM, reset once the model is loaded) above its
RSS then (what the export itself holds). Target (issue 14): the export's own memory stays flat as
users grow (it works in batches of about 4M scores), where the script's grows with every user.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/training.py would shadow the training package

logger = logging.getLogger("benchmarks.export")
N = 6


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(model: Path, way: str, out: Path) -> dict[str, Any]:
    """Load the model, then export one way; return seconds and memory (run in a fresh process)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from service.config import Settings
    from service.export import export_recommendations
    from service.loading import load
    from service.rules import PLAIN
    from service.scorer import Scorer

    threadpool_limits(1, "blas")
    settings = Settings(model_uri=str(model), event_log=out.parent / "events.jsonl")
    scorer = Scorer(load(str(model), "sqlite:///unused.db", verify=False), settings)
    if way == "bare":
        import pandas as pd
        from implicit.cpu.als import AlternatingLeastSquares

        users, items = scorer.model.user_factors, scorer.model.item_factors  # type: ignore[attr-defined]
        bare = AlternatingLeastSquares(factors=users.shape[1])
        bare.user_factors = np.ascontiguousarray(users, dtype=np.float32)
        bare.item_factors = np.ascontiguousarray(items, dtype=np.float32)
        history = scorer.history.astype(np.float32).tocsr()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to what is resident now
    loaded = _status_mib("VmRSS")
    began = time.perf_counter()
    if way == "bare":
        ids, scores = bare.recommend(
            np.arange(len(scorer.users)), history, N=N, filter_already_liked_items=True
        )
        frame = pd.DataFrame(
            {
                "user_id": np.repeat(scorer.users.ids, N),
                "rank": np.tile(np.arange(1, N + 1), len(ids)),
                "item_id": scorer.catalog.ids[ids].ravel(),
                "score": scores.ravel(),
            }
        )
        frame.to_csv(out, index=False)
    else:
        fmt = "parquet" if way == "ours_parquet" else "csv"
        export_recommendations(scorer, out, N, PLAIN, "email", None, fmt)  # type: ignore[arg-type]
    seconds = time.perf_counter() - began
    peak = _status_mib("VmHWM")
    return {
        "seconds": round(seconds, 3),
        "loaded_mib": round(loaded, 1),
        "added_mib": round(peak - loaded, 1),
    }


def measure(users: int, items: int, rounds: int = 3) -> dict[str, Any]:
    """Build the store and model (untimed), then time each way in fresh processes, alternating."""
    from features.dataset import load_dataset
    from features.io import resolve_format
    from features.synthetic import generate_store, write_store
    from training.job import TrainConfig, run_training

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_store(generate_store(users=users, items=items, days=90, seed=7), work / "store")
        dataset = load_dataset(work / "store/events.csv", resolve_format(), work / "store/items.csv")
        run_training(dataset, TrainConfig(holdout=None), work / "model", {"fingerprint": "bench"})
        found: dict[str, list[dict[str, Any]]] = {"ours_csv": [], "ours_parquet": [], "bare": []}
        for _ in range(rounds):
            for way in found:
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    str(work / "model"),
                    way,
                    str(work / f"{way}.out"),
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                found[way].append(json.loads(done.stdout.strip().splitlines()[-1]))
        rows = (work / "bare.out").read_text().count("\n") - 1
    best = {way: min(runs, key=lambda r: r["seconds"]) for way, runs in found.items()}
    return {
        "users": len(dataset.interactions.users),
        "rows": rows,
        **best,
        "ratio_csv": round(best["ours_csv"]["seconds"] / best["bare"]["seconds"], 2),
        "ratio_parquet": round(best["ours_parquet"]["seconds"] / best["bare"]["seconds"], 2),
    }


def main() -> None:
    """Run and print a table; write JSON."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", default="20000,100000", help="Store sizes, comma-separated.")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/export.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [measure(int(u), args.items) for u in args.users.split(",")]
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()}
    when = datetime.now(UTC).isoformat(timespec="seconds")
    result = {"n": N, "items": args.items, "sizes": sizes, "at": when, "machine": machine}
    print(f"{'users':>9}{'rows':>11}{'ours csv s':>12}{'parquet s':>11}{'bare s':>9}{'csv/bare':>10}"
          f"{'ours +MiB':>11}{'parquet +MiB':>14}{'bare +MiB':>11}")  # fmt: skip
    for s in sizes:
        print(f"{s['users']:>9,}{s['rows']:>11,}{s['ours_csv']['seconds']:>12}{s['ours_parquet']['seconds']:>11}"
              f"{s['bare']['seconds']:>9}{s['ratio_csv']:>10}{s['ours_csv']['added_mib']:>11}"
              f"{s['ours_parquet']['added_mib']:>14}{s['bare']['added_mib']:>11}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
