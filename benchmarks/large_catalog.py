"""Benchmark a large catalog end to end: train at default settings, then serve it and weigh a worker.

Usage: ``.venv/bin/python benchmarks/large_catalog.py [--items 100000] [--users 100000] [--days 90]
[--workers 2] [--workdir DIR] [--out benchmarks/results/large_catalog.json]``.

Setup: a synthetic store (``orderlift generate``). Timed: ``orderlift train`` with default settings
(default holdout, so every cart model is tuned on validation and scored on test; ``--no-track``),
its wall time and peak RSS (``getrusage`` of the child). Then ``orderlift serve`` with ``--workers``
on the artifact: 2,000 new 20-item carts and 20 new 1,500-line carts, one at a time, and each worker's
RSS (``/proc/PID/status``) after them. Targets (issue 10): train in minutes within 8 GB; a worker
within 2 GB of RSS; a 1,500-line cart answered 200 within 250 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from serving import BIN, REPO, machine, serve_command, server, wholesale

logger = logging.getLogger(__name__)


def worker_rss_mib(pgid: int) -> list[float]:
    """Return the RSS (MiB) of every worker process in the server's process group."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ProcessLookupError):
            continue
        if b"spawn_main" in cmdline:  # a worker, not the supervisor or the resource tracker
            kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            out.append(round(kib / 1024, 1))
    return sorted(out)


def train(work: Path, store: Path, artifact: Path) -> dict[str, Any]:
    """Run ``orderlift train`` at default settings; return wall seconds, peak RSS and what it chose."""
    cmd = [str(BIN / "orderlift"), "train", "--events", str(store / "events.csv"), "--items",
           str(store / "items.csv"), "--no-track", "--out", str(artifact)]  # fmt: skip
    began = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=work, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - began
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    spec = json.loads((artifact / "manifest.json").read_text()).get("crosssell", {})
    return {"seconds": round(seconds, 1), "peak_rss_mib": round(peak_mib, 1), "cart_model": spec.get("kind"),
            "cart_params": spec.get("params"), "chosen_on": spec.get("chosen_on")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in {"items": 100_000, "users": 100_000, "days": 90, "workers": 2, "seed": 3}.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--workdir", type=Path, help="keep the store and artifact here and reuse the store")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/large_catalog.json")
    args = parser.parse_args()
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler()])
    with tempfile.TemporaryDirectory(prefix="orderlift-large-") as tmp:
        work = args.workdir or Path(tmp)
        store, artifact = work / "store", work / "artifact"
        if not (store / "events.csv").is_file():
            sizes = ["--users", str(args.users), "--days", str(args.days), "--items", str(args.items)]
            cmd = [str(BIN / "orderlift"), "generate", "--out", str(store), *sizes, "--seed", str(args.seed)]
            subprocess.run(cmd, check=True)
        logger.info("training at default settings on %s", store)
        trained = train(work, store, artifact)
        logger.info("trained in %.0f s, peak %.0f MiB: cart model %s", trained["seconds"],
                    trained["peak_rss_mib"], trained["cart_model"])  # fmt: skip
        import numpy as np

        items = np.load(artifact / "items.npy").astype(str).tolist()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLIFT_")}
        env.update(OPENBLAS_NUM_THREADS="1", ORDERLIFT_ACCESS_LOG="all")  # defaults: every request logged
        serve = serve_command(artifact, args.workers)
        with server("ours", serve, env, "/readyz", work, args.workers) as (port, pgid):
            at_start = worker_rss_mib(pgid)
            small = wholesale(port, items, args.seed, lines=20, carts=2000)
            large = wholesale(port, items, args.seed + 1, lines=1500, carts=20)
            after = worker_rss_mib(pgid)
    served = {"worker_rss_mib_at_start": at_start, "worker_rss_mib_after": after, "carts_20": small,
              "carts_1500": large}  # fmt: skip
    checks = {
        "train_minutes_within_8_gb": trained["seconds"] < 30 * 60 and trained["peak_rss_mib"] < 8 * 1024,
        "worker_within_2_gb": max(after, default=0.0) < 2 * 1024,
        "cart_1500_within_250_ms": large["non2xx"] == 0 and large["max_ms"] <= 250,
    }
    for name, ok in checks.items():
        logger.info("%-28s %s", name, "yes" if ok else "NO")
    logger.info("workers %s MiB at start, %s MiB after; 20-item carts p50 %.1f ms; 1,500-line max %.1f ms",
                at_start, after, small["p50_ms"], large["max_ms"])  # fmt: skip
    result = {"machine": machine(), "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
              "config": vars(args) | {"out": str(args.out), "workdir": str(args.workdir)}, "train": trained,
              "serve": served, "targets_met": checks}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    sys.exit(main())
