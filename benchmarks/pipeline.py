"""Benchmark the event pipeline (read + validate + matrix) against a bare ``pandas.read_csv``.

Usage: ``.venv/bin/python benchmarks/pipeline.py [--synthetic-events N] [--skip-synthetic]
[--repeat N] [--out benchmarks/results/pipeline.json]``.

Every measurement runs in a fresh interpreter (this script with the hidden ``--measure`` flag);
bare and pipeline runs are interleaved. Peak RSS is ``ru_maxrss`` of that child: the whole
process, with its baseline after imports reported too. Linux carries ``ru_maxrss`` over
fork+exec from the launcher, so this process never imports numpy/pandas and even the synthetic
store is generated in a child; it checks that its own peak stays below every child's baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = Path(__file__).resolve().parents[2] / "shared/data/online_retail/online_retail.csv.gz"
MIB = 1024.0  # ru_maxrss is KiB on Linux
SYNTH_SECONDS, SYNTH_BYTES, RETAIL_RATIO = 60.0, 3e9, 3.0
#: Functions load_dataset reaches through module globals; wrapped with timers in the child.
STAGES = {
    "features.validate": ("read_table", "validate"),
    "features.dataset": ("kcore", "build_interactions"),
    "features.matrix": ("build_matrix", "item_metadata"),
}
TOP = ("read_table", "validate", "kcore", "build_interactions")
STAGE_ORDER = (*TOP, "build_interactions.build_matrix", "build_interactions.item_metadata", "other")

logger = logging.getLogger("benchmarks.pipeline")


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _timed(name: str, fn: Callable[..., Any], into: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - began

    return wrapper


def measure(kind: str, path: Path, preset: str | None) -> dict[str, Any]:
    """One measurement in this fresh process: ``bare`` read_csv or ``ours`` load_dataset."""
    if kind == "bare":
        import pandas as pd

        baseline, began = _maxrss_kib(), time.perf_counter()
        frame = pd.read_csv(path)
        seconds = time.perf_counter() - began
        return {"seconds": seconds, "rows": len(frame), "baseline_kib": baseline,
                "peak_kib": _maxrss_kib()}  # fmt: skip
    import importlib

    from features.dataset import load_dataset
    from features.io import resolve_format

    stages: dict[str, float] = {}
    for module_name, names in STAGES.items():
        module = importlib.import_module(module_name)
        for name in names:
            label = name if name in TOP else f"build_interactions.{name}"
            setattr(module, name, _timed(label, getattr(module, name), stages))
    fmt = resolve_format(preset) if preset else resolve_format(None, {}, None, None)
    baseline, began = _maxrss_kib(), time.perf_counter()
    dataset = load_dataset(path, fmt)
    seconds = time.perf_counter() - began
    stages["other"] = seconds - sum(stages.get(s, 0.0) for s in TOP)
    report, matrix = dataset.validation.report, dataset.interactions.matrix
    return {"seconds": seconds, "rows": report.rows_read, "accepted": report.rows_accepted,
            "users": matrix.shape[0], "items": matrix.shape[1], "nnz": int(matrix.nnz),
            "baseline_kib": baseline, "peak_kib": _maxrss_kib(), "stages": stages}  # fmt: skip


def make_store(target: int, out_dir: Path) -> dict[str, Any]:
    """Generate and write a store of at least ``target`` events (runs in a child process)."""
    from features.synthetic import generate_store, write_store

    users = math.ceil(target / 49 * 1.01)  # ~49 events per user at the default settings
    while True:
        began = time.perf_counter()
        store = generate_store(users=users, items=5000, seed=1)
        if len(store.events) >= target:
            break
        users = math.ceil(users * target / len(store.events) * 1.005)
    path = write_store(store, out_dir)["events"]
    return {"path": str(path), "events": len(store.events), "users": users,
            "seconds": time.perf_counter() - began, "peak_kib": _maxrss_kib()}  # fmt: skip


def run_child(kind: str, path: Path, preset: str | None = None, target: int = 0) -> dict[str, Any]:
    """Run this script's ``--measure kind`` in a fresh interpreter; return its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", kind, "--path", str(path),
           "--synthetic-events", str(target), *(["--preset", preset] if preset else [])]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    logger.info("%-8s %s: %.2fs, peak RSS %.0f MiB", kind, path.name, result["seconds"],
                result["peak_kib"] / MIB)  # fmt: skip
    return result


def bench(name: str, path: Path, preset: str | None, repeat: int) -> dict[str, Any]:
    """Measure bare read and pipeline ``repeat`` times each (interleaved) and summarise."""
    bare, ours = [], []
    for _ in range(repeat):
        bare.append(run_child("bare", path, preset))
        ours.append(run_child("ours", path, preset))
    bare_s = statistics.median(r["seconds"] for r in bare)
    ours_s = statistics.median(r["seconds"] for r in ours)

    def mib(runs: list[dict[str, Any]], key: str) -> float:
        return round(max(r[key] for r in runs) / MIB, 1)

    return {
        "dataset": name, "path": str(path), "file_mib": round(path.stat().st_size / 2**20, 1),
        "rows": ours[0]["rows"], "rows_accepted": ours[0]["accepted"],
        "matrix": {k: ours[0][k] for k in ("users", "items", "nnz")}, "repeat": repeat,
        "bare_read_s": round(bare_s, 3), "orderlift_s": round(ours_s, 3),
        "ratio": round(ours_s / bare_s, 2),
        "bare_read_runs_s": [round(r["seconds"], 3) for r in bare],
        "orderlift_runs_s": [round(r["seconds"], 3) for r in ours],
        "peak_rss_mib_ours": mib(ours, "peak_kib"), "peak_rss_mib_bare": mib(bare, "peak_kib"),
        "baseline_rss_mib_ours": mib(ours, "baseline_kib"),
        "baseline_rss_mib_bare": mib(bare, "baseline_kib"),
        "stages_median_s": {s: round(statistics.median(r["stages"].get(s, 0.0) for r in ours), 3)
                            for s in STAGE_ORDER},
    }  # fmt: skip


def judge(row: dict[str, Any], synthetic: bool) -> None:
    """Attach the target and whether it is met."""
    if synthetic:
        row["target"] = "<= 60 s, <= 3 GB peak"
        peak_bytes = row["peak_rss_mib_ours"] * 2**20
        row["met"] = row["orderlift_s"] <= SYNTH_SECONDS and peak_bytes <= SYNTH_BYTES
    else:
        row["target"] = "<= 3x bare read"
        row["met"] = row["ratio"] <= RETAIL_RATIO


def machine() -> dict[str, Any]:
    """Describe the machine without importing the heavy libraries (keeps this process lean)."""
    from importlib.metadata import version

    return {"nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "loadavg": os.getloadavg(), "python": platform.python_version(),
            "platform": platform.platform(),
            **{lib: version(lib) for lib in ("numpy", "pandas", "pyarrow", "scipy")}}  # fmt: skip


def show(rows: list[dict[str, Any]]) -> None:
    """Print the comparison and the per-stage tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))
    table = Table(title="Event pipeline vs bare pandas.read_csv (median of repeats; MB = MiB)")
    for col in ("dataset", "rows", "bare read s", "orderlift s", "ratio", "peak RSS MB (ours)",
                "peak RSS MB (bare)", "target", "met?"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("dataset", "target") else "right")
    for r in rows:
        table.add_row(r["dataset"], f"{r['rows']:,}", f"{r['bare_read_s']:.2f}",
                      f"{r['orderlift_s']:.2f}", f"{r['ratio']:.2f}x",
                      f"{r['peak_rss_mib_ours']:,.0f}", f"{r['peak_rss_mib_bare']:,.0f}",
                      r["target"], "[green]yes" if r["met"] else "[red]NO")  # fmt: skip
    console.print(table)
    stages = Table(title="orderlift per stage, median s (share of total); indented = inside above")
    stages.add_column("dataset")
    for s in STAGE_ORDER:
        stages.add_column(s.replace("build_interactions.", "↳ "), justify="right")
    for r in rows:
        got = r["stages_median_s"]
        stages.add_row(r["dataset"], *(f"{got[s]:.2f} ({got[s] / r['orderlift_s']:.0%})"
                                        for s in STAGE_ORDER))  # fmt: skip
    console.print(stages)
    for r in rows:
        console.print(f"{r['dataset']}: baseline RSS after imports: ours "
                      f"{r['baseline_rss_mib_ours']:.0f} MiB, bare {r['baseline_rss_mib_bare']:.0f}"
                      f" MiB; runs s: ours {r['orderlift_runs_s']}, bare {r['bare_read_runs_s']};"
                      f" matrix {r['matrix']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-events", type=int, default=10_000_000)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--repeat", type=int, default=None, help="default 3 (retail), 1 (synth)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/pipeline.json")
    parser.add_argument("--measure", choices=("bare", "ours", "generate"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--preset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        logging.basicConfig(level=logging.WARNING)
        if args.measure == "generate":
            print(json.dumps(make_store(args.synthetic_events, args.path)))
        else:
            print(json.dumps(measure(args.measure, args.path, args.preset)))
        return

    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler()])
    info, rows = machine(), []
    if ONLINE_RETAIL.is_file():
        rows.append(bench("online-retail", ONLINE_RETAIL, "online-retail", args.repeat or 3))
        judge(rows[-1], synthetic=False)
    else:
        logger.warning("skipping Online Retail: %s not found", ONLINE_RETAIL)
    if not args.skip_synthetic:
        with tempfile.TemporaryDirectory(prefix="orderlift-bench-") as tmp:
            store = run_child("generate", Path(tmp), target=args.synthetic_events)
            name = f"synthetic {store['events'] / 1e6:.1f}M"
            rows.append(bench(name, Path(store["path"]), None, args.repeat or 1))
            rows[-1]["synthetic"] = {k: store[k] for k in ("events", "users")}
            judge(rows[-1], synthetic=True)
    launcher = _maxrss_kib() / MIB
    if any(launcher >= min(r["baseline_rss_mib_ours"], r["baseline_rss_mib_bare"]) for r in rows):
        logger.warning("launcher peak RSS %.0f MiB may inflate the children's ru_maxrss", launcher)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    for r in rows:
        r.update(machine=info, timestamp=stamp, launcher_peak_rss_mib=round(launcher, 1))
    show(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
