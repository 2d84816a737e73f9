"""EASE past 30,000 items: sparse EASE's quality against the closed form, and a 100,000-item store.

Usage: ``.venv/bin/python benchmarks/ease_large.py [--events ../shared/data/online_retail/
online_retail.csv.gz] [--store DIR] [--out benchmarks/results/ease_large.json]``.

Part 1, Online Retail (3,659 items, where the closed form fits): ``orderlift train --model ease``
with ``variant=dense`` and with ``variant=sparse`` at several ``neighbours``, each run as a user
runs it (default holdout, popularity beside it), NDCG@10 and hit rate@10 on the same test split.
Part 2, a synthetic store of 100,000 items and users (``orderlift generate``, or ``--store``):
``orderlift train --model ease`` at default settings (``variant=auto`` picks sparse above
``max_items``) and ``--model als`` for reference, each one process: wall time, peak RSS
(``/usr/bin/time``), NDCG@10. Targets (issue 15): trains within 8 GB; quality near the closed form.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv/bin"
DEFAULT_EVENTS = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"


def train(work: Path, source: list[str], model: str, params: list[str]) -> dict[str, Any]:
    """Run ``orderlift train`` once; return its wall time, peak RSS, variant and metrics."""
    out = work / f"{model}-{'-'.join(params) or 'defaults'}".replace("=", "")
    extra = [a for p in params for a in ("--param", p)]
    cmd = ["/usr/bin/time", "-f", "%M", str(BIN / "orderlift"), "train", *source, "--model", model, *extra,
           "--no-track", "--out", str(out)]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    manifest = json.loads((out / "manifest.json").read_text())
    metrics, baseline = manifest["metrics"]["model"], manifest["metrics"]["baseline"]
    return {
        "model": model,
        "params": params,
        "variant": manifest["model"]["params"].get("variant"),
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024),
        "ndcg_at_10": round(metrics["ndcg_at_10"], 4),
        "hit_rate_at_10": round(metrics["hit_rate_at_10"], 4),
        "popular_ndcg_at_10": round(baseline["ndcg_at_10"], 4),
    }


def show(title: str, rows: list[dict[str, Any]]) -> None:
    """Print one part's table."""
    print(f"\n{title}")
    print(f"{'model':<6} {'params':<34} {'variant':<7} {'ndcg@10':>8} {'hit@10':>7} {'popular':>8} "
          f"{'wall s':>7} {'peak MiB':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['model']:<6} {' '.join(r['params']) or 'defaults':<34} {r['variant'] or '-':<7} "
              f"{r['ndcg_at_10']:>8.4f} {r['hit_rate_at_10']:>7.4f} {r['popular_ndcg_at_10']:>8.4f} "
              f"{r['seconds']:>7.1f} {r['peak_rss_mib']:>9,}")  # fmt: skip


def main() -> None:
    """Run both parts and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS)
    parser.add_argument("--store", type=Path, help="a generated 100,000-item store to reuse")
    parser.add_argument("--neighbours", default="100,200,400")
    parser.add_argument("--skip-retail", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/ease_large.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_retail:
            retail = ["--preset", "online-retail", "--events", str(args.events)]
            runs = [train(work, retail, "ease", ["variant=dense"])]
            for k in args.neighbours.split(","):
                runs.append(train(work, retail, "ease", ["variant=sparse", f"neighbours={k}"]))
            results["online_retail"] = runs
            show("Online Retail (3,659 items): the closed form against sparse EASE", runs)
        store = args.store
        if store is None:
            store = work / "store"
            subprocess.run([str(BIN / "orderlift"), "generate", "--out", str(store), "--users", "100000",
                            "--items", "100000", "--days", "90", "--seed", "7"], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        source = ["--events", str(store / "events.csv"), "--items", str(store / "items.csv")]
        runs = [train(work, source, "ease", []), train(work, source, "als", [])]
        results["synthetic_100k"] = runs
        show("Synthetic store, 100,000 items and users: defaults", runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
