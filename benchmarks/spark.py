"""Benchmark the two engines and a hand-written script, end to end as processes.

Usage: ``.venv/bin/python benchmarks/spark.py [--events 1000000,10000000] [--skip-retail]
[--quality] [--master local[2]] [--out benchmarks/results/spark.json]``.

Per dataset (Online Retail, then synthetic stores of the given sizes), each a fresh process timed
wall to wall, with the peak RSS of its whole process tree (Spark's JVM included) polled from /proc:

- ``hand``: the minimal script one would write (``--hand``): pandas reads the file, drops
  anonymous, cancelled and non-positive lines, scipy builds the user x item matrix of
  log2(1 + quantity) x event weight, implicit fits ALS (BLAS on one thread), numpy saves the factors;
- ``local``: ``orderlift train --model als --holdout none --no-track`` (validation, co-purchase and
  co-view, the cart model, KPIs, the whole artifact);
- ``spark``: the same with ``--engine spark --spark-master MASTER``.

Same ALS parameters everywhere (64 factors, 15 iterations, regularisation 0.01, alpha 1). With
``--quality`` the two engines also train with the default holdout on Online Retail, and their
NDCG@10 (from the manifests) is reported beside popularity's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"
ORDERLIFT = str(Path(sys.executable).parent / "orderlift")
ALS = [
    "--model",
    "als",
    "--factors",
    "64",
    "--iterations",
    "15",
    "--regularization",
    "0.01",
    "--alpha",
    "1.0",
]


def _tree_rss_kib(root: int) -> int:
    """Return the summed RSS (KiB) of a process and its descendants."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{pid}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run(command: list[str]) -> dict[str, Any]:
    """Run a command; return its wall seconds and the peak RSS of its process tree."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def poll() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kib(process.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - began
    watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {"seconds": round(seconds, 2), "peak_mib": round(peak[0] / 1024.0, 1)}


def hand(path: str, retail: bool, out: str) -> None:
    """The minimal pandas + scipy + implicit script (run in its own process)."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    if retail:
        frame = pd.read_csv(path, usecols=["InvoiceNo", "StockCode", "Quantity", "CustomerID"],
                            dtype={"InvoiceNo": str, "StockCode": str})  # fmt: skip
        frame = frame[frame["CustomerID"].notna() & ~frame["InvoiceNo"].str.startswith("C")]
        frame = frame[frame["Quantity"] > 0]
        users, items = frame["CustomerID"], frame["StockCode"]
        weight = 10.0 * np.log2(1.0 + frame["Quantity"].to_numpy(np.float64))
    else:
        frame = pd.read_csv(path, usecols=["user_id", "item_id", "event_type", "quantity"])
        per_type = frame["event_type"].map({"view": 1.0, "cart": 4.0, "purchase": 10.0}).fillna(0.0)
        users, items = frame["user_id"], frame["item_id"]
        weight = per_type.to_numpy() * np.log2(1.0 + frame["quantity"].to_numpy(np.float64))
    u, user_ids = pd.factorize(users)
    i, item_ids = pd.factorize(items)
    matrix = sp.csr_matrix((weight, (u, i)), shape=(len(user_ids), len(item_ids)), dtype=np.float32)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.01, alpha=1.0,
                                        random_state=42, calculate_training_loss=False)  # fmt: skip
        model.fit(matrix, show_progress=False)
    np.save(Path(out) / "user_factors.npy", model.user_factors)
    np.save(Path(out) / "item_factors.npy", model.item_factors)


def make_store(target: int, out_dir: Path) -> dict[str, Any]:
    """Generate a synthetic store of at least ``target`` events (in a child process)."""
    users = math.ceil(target / 49 * 1.01)
    code = (
        "import sys; from features.synthetic import generate_store, write_store; "
        f"s = generate_store(users={users}, items=5000, seed=1); "
        "write_store(s, sys.argv[1]); print(len(s.events))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(out_dir)], capture_output=True, text=True, check=True
    )
    return {
        "path": str(out_dir / "events.csv"),
        "events": int(done.stdout.strip().splitlines()[-1]),
        "users": users,
    }


def measure(label: str, path: str, preset: list[str], master: str, scratch: Path) -> dict[str, Any]:
    """Time hand, local and spark on one file."""
    retail = bool(preset)
    out: dict[str, Any] = {"data": label, "path": path}
    hand_out = scratch / f"{label}-hand"
    hand_out.mkdir(exist_ok=True)
    out["hand"] = run([sys.executable, __file__, "--hand", path, "--hand-out", str(hand_out),
                       *(["--hand-retail"] if retail else [])])  # fmt: skip
    base = [ORDERLIFT, "train", "--events", path, *preset, *ALS, "--holdout", "none", "--no-track"]
    out["local"] = run([*base, "--out", str(scratch / f"{label}-local")])
    out["spark"] = run([*base, "--out", str(scratch / f"{label}-spark"), "--engine", "spark",
                        "--spark-master", master])  # fmt: skip
    for kind in ("local", "spark"):
        out[f"{kind}_over_hand"] = round(out[kind]["seconds"] / out["hand"]["seconds"], 2)
    print(f"{label}: hand {out['hand']}, local {out['local']}, spark {out['spark']}", flush=True)
    return out


def quality(master: str, scratch: Path) -> dict[str, Any]:
    """Train both engines with the default holdout on Online Retail; return their NDCG@10."""
    found: dict[str, Any] = {}
    for engine in ("local", "spark"):
        target = scratch / f"quality-{engine}"
        command = [ORDERLIFT, "train", "--events", str(ONLINE_RETAIL), "--preset", "online-retail",
                   *ALS, "--no-track", "--out", str(target), "--engine", engine,
                   "--spark-master", master]  # fmt: skip
        timing = run(command)
        manifest = json.loads((target / "manifest.json").read_text())
        metrics = manifest["metrics"]
        found[engine] = {**timing, "ndcg_at_10": metrics["model"]["ndcg_at_10"],
                         "popular_ndcg_at_10": metrics["baseline"]["ndcg_at_10"]}  # fmt: skip
        print(f"quality {engine}: {found[engine]}", flush=True)
    found["spark_over_local_ndcg"] = round(found["spark"]["ndcg_at_10"] / found["local"]["ndcg_at_10"], 3)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1000000,10000000")
    parser.add_argument("--skip-retail", action="store_true")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/spark.json")
    parser.add_argument("--hand")
    parser.add_argument("--hand-out")
    parser.add_argument("--hand-retail", action="store_true")
    args = parser.parse_args()
    if args.hand:
        hand(args.hand, args.hand_retail, args.hand_out)
        return
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    when = datetime.now(UTC).isoformat(timespec="seconds")
    results: dict[str, Any] = {"when": when, "master": args.master, "machine": machine, "runs": []}
    with tempfile.TemporaryDirectory(prefix="orderlift-spark-bench-") as tmp:
        scratch = Path(tmp)
        if not args.skip_retail:
            results["runs"].append(measure("online-retail", str(ONLINE_RETAIL), ["--preset", "online-retail"],
                                           args.master, scratch))  # fmt: skip
        for target in (int(t) for t in args.events.split(",") if t):
            store = make_store(target, scratch / f"store-{target}")
            row = measure(f"synthetic-{store['events']}", store["path"], [], args.master, scratch)
            results["runs"].append({**row, "events": store["events"], "users": store["users"]})
        if args.quality:
            results["quality"] = quality(args.master, scratch)
    print(f"\n| data | hand script | orderlift local | spark ({args.master}) | local/hand | spark/hand |")
    print("|---|---|---|---|---|---|")
    for r in results["runs"]:
        cells = [
            f"{r[k]['seconds']:.1f} s, {r[k]['peak_mib'] / 1024:.1f} GB" for k in ("hand", "local", "spark")
        ]
        print(f"| {r['data']} | {' | '.join(cells)} | {r['local_over_hand']}x | {r['spark_over_hand']}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
