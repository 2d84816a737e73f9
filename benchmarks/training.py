"""Benchmark ``orderlift train --model als`` against a bare implicit ALS fit (and, optionally, quality).

Usage: ``.venv/bin/python benchmarks/training.py [--skip-synthetic] [--synthetic-events N]
[--repeat N] [--quality] [--out benchmarks/results/training.json]``.

Every measurement is a fresh process, its peak RSS the ``ru_maxrss`` that ``os.wait4`` returns for
that one child. ``cli`` is the real ``orderlift train`` subprocess timed wall to wall (interpreter
start, imports, load, fit, co-purchase/co-view, artifact; ``--holdout none --no-track``). ``bare``
loads the same matrix with ``load_dataset`` untimed, then times ``AlternatingLeastSquares(...).fit``
under ``threadpool_limits(1, "blas")``. ``stages`` runs the same CLI in-process with timers around
its functions. Linux carries ``ru_maxrss`` over fork+exec, so this launcher never imports numpy.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"
ORDERLIFT = Path(sys.executable).parent / "orderlift"
PARAMS: dict[str, Any] = {"factors": 64, "iterations": 15, "regularization": 0.01, "alpha": 1.0}
CLI_PARAMS = ["--model", "als", "--factors", "64", "--iterations", "15", "--regularization", "0.01",
              "--alpha", "1.0", "--param", "random_state=42", "--holdout", "none"]  # fmt: skip
RATIO, SYNTH_S, SYNTH_BYTES, MIB = 1.15, 180.0, 3e9, 1024.0
KINDS = {  # kind -> (label, informational?)
    "cli": ("orderlift train (--no-track)", False),
    "bare": ("bare implicit fit, threadpool_limits(1, blas)", False),
    "bare-nolimit": ("bare implicit fit, NO threadpool_limits [info]", True),
    "bare-loss": ("bare fit + calculate_training_loss=True [info]", True),
    "cli-mlflow": ("orderlift train + MLflow sqlite tracking [info]", True),
    "stages": ("orderlift train in-process, stage timers [info]", True),
}
QUALITY = ("ndcg_at_10", "recall_at_10", "hit_rate_at_10", "revenue_at_10", "coverage_at_10",
           "crosssell_hit_at_10", "crosssell_revenue_at_10")  # fmt: skip


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def _timed(label: str, fn: Callable[..., Any], into: dict[str, list[float]]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into.setdefault(label, []).append(time.perf_counter() - began)

    return wrapper


def _load(path: Path, preset: str | None) -> Any:
    from features.dataset import load_dataset
    from features.matrix import Weighting
    from training.options import SourceOptions

    fmt = SourceOptions(events=path, preset=preset).format()  # as the CLI builds it
    return load_dataset(path, fmt, None, Weighting())


def measure_bare(kind: str, path: Path, preset: str | None) -> dict[str, Any]:
    """Load untimed, then time only the implicit fit (child process)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = _load(path, preset).interactions.matrix
    loss = kind == "bare-loss"
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with threadpool_limits(None if kind == "bare-nolimit" else 1, "blas"):
        began, cpu = time.perf_counter(), _cpu()
        model = AlternatingLeastSquares(**PARAMS, random_state=42, calculate_training_loss=loss)
        model.fit(matrix, show_progress=False)
        seconds, cpu = time.perf_counter() - began, _cpu() - cpu
    return {"seconds": seconds, "cpu_s": cpu, "baseline_kib": baseline, "users": matrix.shape[0],
            "items": matrix.shape[1], "nnz": int(matrix.nnz)}  # fmt: skip


def measure_stages(path: Path, preset: str | None, out: Path) -> dict[str, Any]:
    """Run the train command in-process with timers around its stages (child process)."""
    began = time.perf_counter()
    import implicit.cpu.als as als
    from implicit.cpu.als import AlternatingLeastSquares

    import training.cli as cli
    import training.job as job
    import training.run as run

    t: dict[str, list[float]] = {"imports": [time.perf_counter() - began]}
    for module, name in ((run, "load_dataset"), (run, "data_report"), (run, "fingerprint"),
                         (job, "order_baskets"), (job, "session_baskets"), (job, "association_stats"),
                         (job, "save_artifact")):  # fmt: skip
        setattr(module, name, _timed(name, getattr(module, name), t))
    AlternatingLeastSquares.fit = _timed("implicit", AlternatingLeastSquares.fit, t)
    als._als.calculate_loss = _timed("loss", als._als.calculate_loss, t)  # once per epoch
    real, marks, cpus = run.run_training, {}, {}

    def spy(*args: Any, **kwargs: Any) -> Any:  # run_training, its on_stage marking the time
        bound = inspect.signature(real).bind(*args, **kwargs)
        on_stage = bound.arguments.get("on_stage", lambda _: None)

        def mark(text: str) -> None:  # fitting ..., computing ..., writing ...
            marks[text.split()[0]], cpus[text.split()[0]] = time.perf_counter(), _cpu()
            on_stage(text)

        bound.arguments["on_stage"] = mark
        result = real(*bound.args, **bound.kwargs)
        t["fit"], marks["end"] = [result.fit_seconds], time.perf_counter()
        return result

    run.run_training = spy
    began = time.perf_counter()
    preset_args = ["--preset", preset] if preset else []
    cli.app(["train", "--events", str(path), *preset_args, *CLI_PARAMS, "--no-track", "--out", str(out)],
            standalone_mode=False)  # fmt: skip
    total = time.perf_counter() - began

    def get(name: str, i: int = 0) -> float:  # the i-th call's seconds
        return t[name][i] if len(t.get(name, [])) > i else 0.0

    copurchase = get("order_baskets") + get("association_stats")
    coview = get("session_baskets") + get("association_stats", 1)
    stats = marks["writing"] - marks["computing"]
    stages = {
        "imports (training.cli, implicit, pandas...)": get("imports"),
        "load_dataset": get("load_dataset"),
        "data_report + fingerprint (sha256 of input)": get("data_report") + get("fingerprint"),
        "fit: implicit ALS.fit minus calculate_loss": get("implicit") - sum(t.get("loss", [])),
        "fit: implicit calculate_loss (calculate_training_loss=True)": sum(t.get("loss", [])),
        "fit: astype copy, threadpool_limits, restore": get("fit") - get("implicit"),
        "co-purchase: order_baskets + association_stats": copurchase,
        "co-view: session_baskets + association_stats": coview,
        "manifest (popularity, versions)": stats - copurchase - coview,
        "artifact write: save_artifact (+ manifest read)": marks["end"] - marks["writing"],
    }
    stages["other CLI (typer, create_model, progress)"] = total + get("imports") - sum(stages.values())
    fit_cpu = cpus["computing"] - cpus["fitting"]
    return {"seconds": total + get("imports"), "stages": stages, "fit_s": get("fit"), "fit_cpu_s": fit_cpu}


def measure_quality(path: Path) -> dict[str, Any]:
    """Evaluate every model kind on the chronological holdout, popular beside it (child process)."""
    import training.job as job
    from training.models import MODEL_KINDS, create_model

    dataset, fits = _load(path, "online-retail"), dict[str, list[float]]()  # fit seconds by kind

    def create_timed(kind: str, **params: Any) -> Any:
        model = create_model(kind, **params)
        model.fit = _timed(kind, model.fit, fits)  # type: ignore[method-assign]
        return model

    job.create_model = create_timed
    rows = []
    for kind in MODEL_KINDS:
        fits.clear()
        began = time.perf_counter()
        config = job.TrainConfig(model=kind, holdout=0.2)
        ev = job.evaluate(dataset, config, on_stage=lambda s: None, on_epoch=None)
        fit_s = fits[kind][0]  # the model's fit (the baseline's is the second popular one)
        rows.append({"model": kind, "fit_s": fit_s,
                     "evaluate_s": time.perf_counter() - began, "params": create_model(kind).params.as_dict(),
                     "figures": {**ev.model, **ev.crosssell},
                     "baseline": {**ev.baseline, **ev.crosssell_baseline}, "split": ev.split})  # fmt: skip
    return {"rows": rows}


def make_store(target: int, out_dir: Path) -> dict[str, Any]:
    """Generate and write a synthetic store of at least ``target`` events (child process)."""
    from features.synthetic import generate_store, write_store

    users = math.ceil(target / 49 * 1.01)  # ~49 events per user at the defaults
    while len((store := generate_store(users=users, items=5000, seed=1)).events) < target:
        users = math.ceil(users * target / len(store.events) * 1.005)
    path = write_store(store, out_dir)["events"]
    return {"path": str(path), "events": len(store.events), "users": users}


def spawn(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one child; return its wall seconds, its own peak RSS and CPU seconds (wait4), stdout."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    full_env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=full_env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "peak_kib": usage.ru_maxrss, "cpu": cpu, "stdout": stdout}


def child(mode: str, path: Path, preset: str | None = None, **extra: Any) -> dict[str, Any]:
    """Run this script's hidden ``--measure mode`` in a fresh interpreter."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", mode, "--path", str(path),
           *(["--preset", preset] if preset else []), *flags]  # fmt: skip
    done = spawn(cmd)
    result = json.loads(done["stdout"].strip().splitlines()[-1])
    return result | {k: done[k] for k in ("peak_kib", "wall", "cpu")}


def measure(kind: str, path: Path, preset: str | None) -> dict[str, Any]:
    """One measurement of ``kind`` in its own process."""
    with tempfile.TemporaryDirectory(prefix="orderlift-train-") as tmp:
        if kind.startswith("bare"):
            return child(kind, path, preset)
        if kind == "stages":  # seconds: the child's wall, as for the CLI
            got = child("stages", path, preset, artifact=Path(tmp) / "artifact")
            got["stages"]["python start + exit (wall - in-process)"] = got["wall"] - got["seconds"]
            return got | {"seconds": got["wall"], "cpu_s": got["cpu"]}
        track = ["--no-track"] if kind == "cli" else []
        cmd = [str(ORDERLIFT), "train", "--events", str(path), *(["--preset", preset] if preset else []),
               *CLI_PARAMS, *track, "--out", str(Path(tmp) / "artifact")]  # fmt: skip
        done = spawn(cmd, cwd=Path(tmp), env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db"})
        fit = re.search(r"fitted on all events given \(([\d.]+)s\)", done["stdout"])
        fit_s = fit and float(fit[1])
        return {"seconds": done["wall"], "cpu_s": done["cpu"], "peak_kib": done["peak_kib"], "fit_s": fit_s}


def bench(name: str, path: Path, preset: str | None, repeat: int) -> list[dict[str, Any]]:
    """Measure every kind ``repeat`` times, interleaved; one summary row per kind."""
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for i in range(repeat):
        for kind in KINDS:
            runs[kind].append(measure(kind, path, preset))
            print(f"  {name} #{i + 1} {kind}: {runs[kind][-1]['seconds']:.2f}s", file=sys.stderr)
    rows = []
    for kind, got in runs.items():
        row = {"dataset": name, "kind": kind, "label": KINDS[kind][0], "informational": KINDS[kind][1],
               "repeat": repeat, "runs_s": [round(r["seconds"], 3) for r in got],
               "peak_rss_mib": round(max(r["peak_kib"] for r in got) / MIB, 1)}  # fmt: skip
        for key in ("seconds", "cpu_s", "fit_s", "fit_cpu_s"):  # medians
            if all(r.get(key) is not None for r in got):
                row[key] = round(statistics.median(r[key] for r in got), 3)
        if "baseline_kib" in got[0]:
            row["rss_before_fit_mib"] = round(max(r["baseline_kib"] for r in got) / MIB, 1)
        if kind == "stages":
            row["stages_s"] = {s: round(statistics.median(r["stages"][s] for r in got), 3)
                               for s in got[0]["stages"]}  # fmt: skip
        rows.append(row | {k: got[0][k] for k in ("users", "items", "nnz") if k in got[0]})
    bare = next(r for r in rows if r["kind"] == "bare")
    for r in rows:
        r["vs_bare"], r["vs_bare_cpu"] = [round(r[k] / bare[k], 2) for k in ("seconds", "cpu_s")]
    return rows


def judge(rows: list[dict[str, Any]], synthetic: bool) -> list[dict[str, Any]]:
    """Return the targets for one dataset and whether they are met (CPU and fit-only rows: info)."""
    by = {r["kind"]: r for r in rows}
    cli, bare, staged = by["cli"], by["bare"], by["stages"]
    fit, fit_cpu = staged["fit_s"] / bare["seconds"], staged["fit_cpu_s"] / bare["cpu_s"]
    checks = [("orderlift train (end to end) / bare fit, wall", cli["vs_bare"]),
              ("(info) same in CPU seconds (less sensitive to a busy machine)", cli["vs_bare_cpu"]),
              ("(info) fit alone: FactorModel.fit / bare fit, wall", round(fit, 2)),
              ("(info) fit alone: FactorModel.fit / bare fit, CPU", round(fit_cpu, 2))]  # fmt: skip
    out = [(f"{t} <= 1.15x", v, v <= RATIO) for t, v in checks]
    if synthetic:
        out += [("end to end <= 180 s", cli["seconds"], cli["seconds"] <= SYNTH_S),
                ("peak RSS <= 3 GB (3e9 B), MiB", cli["peak_rss_mib"],
                 cli["peak_rss_mib"] * 2**20 <= SYNTH_BYTES)]  # fmt: skip
    return [{"dataset": rows[0]["dataset"], "target": t, "value": v, "met": ok} for t, v, ok in out]


def quality_markdown(rows: list[dict[str, Any]]) -> str:
    """Return the README table: popular first, then every model; cross-sell as the job scores it."""
    names = [m.replace("_at_", "@").replace("crosssell_", "crosssell ") for m in QUALITY]
    head = "| model | " + " | ".join(names) + " | fit s |"
    lines = [head, "|" + "---|" * (len(QUALITY) + 2)]
    pop = next(r for r in rows if r["model"] == "popular")
    ordered = [("popular (baseline)", pop["baseline"], pop)]
    ordered += [(r["model"], r["figures"], r) for r in rows if r["model"] != "popular"]
    for name, fig, r in ordered:
        lines.append(f"| {name} | " + " | ".join(f"{fig[m]:.4f}" for m in QUALITY) + f" | {r['fit_s']:.2f} |")
    return "\n".join(lines)


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def show(rows: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    """Print the measurements, targets and stage breakdown."""
    from rich.console import Console

    console = Console(width=max(Console().width, 160))
    console.print(_table("ALS training: orderlift train vs bare implicit fit (median s; MB = MiB)",
        ["dataset", "measurement", "median s", "runs s", "vs bare", "CPU s", "vs bare CPU", "peak RSS MB",
         "fit s"],
        [[r["dataset"], r["label"], f"{r['seconds']:.2f}", ", ".join(map(str, r["runs_s"])),
          f"{r['vs_bare']:.2f}x", f"{r['cpu_s']:.2f}", f"{r['vs_bare_cpu']:.2f}x",
          f"{r['peak_rss_mib']:,.0f}", f"{r['fit_s']:.2f}" if "fit_s" in r else ""]
         for r in rows]))  # fmt: skip
    console.print(_table("Targets", ["dataset", "target", "value", "met?"],
        [[t["dataset"], t["target"], str(t["value"]), "[green]yes" if t["met"] else "[red]NO"]
         for t in targets]))  # fmt: skip
    staged = [r for r in rows if r["kind"] == "stages"]
    share = [[stage, *(f"{r['stages_s'][stage]:.2f} ({r['stages_s'][stage] / r['seconds']:.0%})"
                       for r in staged)] for stage in (staged[0]["stages_s"] if staged else [])]  # fmt: skip
    console.print(_table("orderlift train stages (CLI run in-process with timers; median s, share)",
        ["stage", *(r["dataset"] for r in staged)],
        [*share, ["total (child wall)", *(f"{r['seconds']:.2f}" for r in staged)]]))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-events", type=int, default=10_000_000)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--repeat", type=int, default=None, help="default 3 (retail), 1 (synthetic)")
    parser.add_argument("--quality", action="store_true", help="also evaluate every model kind")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/training.json")
    for hidden in ("--measure", "--path", "--preset", "--artifact"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # this file is named training.py: keep it from shadowing the package
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
        path, mode = Path(args.path), args.measure
        result = (make_store(args.synthetic_events, path) if mode == "generate"
                  else measure_stages(path, args.preset, Path(args.artifact)) if mode == "stages"
                  else measure_quality(path) if mode == "quality"
                  else measure_bare(mode, path, args.preset))  # fmt: skip
        print(json.dumps(result, default=str))
        return
    libs = ("implicit", "numpy", "scipy", "threadpoolctl", "mlflow")
    doc: dict[str, Any] = {"timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "params": PARAMS,
                           "machine": {"nproc": os.cpu_count(), "loadavg": os.getloadavg(),
                                       "python": platform.python_version(), "platform": platform.platform(),
                                       **{lib: version(lib) for lib in libs}}}  # fmt: skip
    rows: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    if ONLINE_RETAIL.is_file():
        rows += bench("online-retail", ONLINE_RETAIL, "online-retail", args.repeat or 3)
        targets += judge(rows, synthetic=False)
    else:
        print(f"skipping Online Retail: {ONLINE_RETAIL} not found", file=sys.stderr)
    if not args.skip_synthetic:
        with tempfile.TemporaryDirectory(prefix="orderlift-train-store-") as tmp:
            store = child("generate", Path(tmp), synthetic_events=args.synthetic_events)
            name = f"synthetic {store['events'] / 1e6:.1f}M"
            synth = bench(name, Path(store["path"]), None, args.repeat or 1)
            doc["synthetic"] = {k: store[k] for k in ("events", "users")}
            rows, targets = rows + synth, targets + judge(synth, synthetic=True)
    launcher = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB  # inherited by children
    doc |= {"measurements": rows, "targets": targets, "launcher_peak_rss_mib": round(launcher, 1)}
    show(rows, targets)
    if args.quality and ONLINE_RETAIL.is_file():
        quality = child("quality", ONLINE_RETAIL)["rows"]
        doc["quality"] = {"rows": quality, "markdown": quality_markdown(quality)}
        print("\nOnline Retail, chronological holdout 0.2, default params (popular first):\n")
        print(doc["quality"]["markdown"])
        print("\ncross-sell columns: model rows score carts with the train period's co-purchase statistics "
              "(identical for every model); the popular row ranks carts by popularity.")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
