"""The train and sweep commands' flow: load with progress, train, show figures, log to MLflow."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from features.dataset import Dataset, load_dataset
from features.errors import DataError
from features.io import SourceFormat
from features.matrix import Weighting
from features.report import data_report
from training.display import render_carts, render_leaderboard, render_metrics
from training.errors import OptionError
from training.job import TrainConfig, TrainResult, fingerprint, run_training
from training.sweep import AUTO, AUTO_GRID, SweepResult, Trial, sweep

__all__ = ["Inputs", "Target", "load_inputs", "sweep_and_log", "train_and_log"]


@dataclass(frozen=True)
class Inputs:
    """Where the events come from and how to read and filter them."""

    events: str  # a path; with the spark engine also a directory or a URI
    items: Path | None
    fmt: SourceFormat
    min_user: int = 1
    min_item: int = 1
    #: ``local``, or ``spark``: read, validate, weigh and count baskets in Spark on ``spark_master``.
    engine: str = "local"
    spark_master: str = "local[*]"
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine not in {"local", "spark"}:
            raise OptionError(f"--engine {self.engine!r}: choose local or spark")

    def session(self) -> AbstractContextManager[Any]:
        """Return a context giving the Spark session of the ``spark`` engine (None for ``local``).

        The events' layout and path are checked first, so a wrong one fails before the JVM starts.
        """
        if self.engine != "spark":
            return nullcontext(None)
        from training.spark.session import spark_session
        from training.spark.validation import check_source

        check_source(self.events, self.fmt)
        return spark_session(self.spark_master, self.spark_conf)


@dataclass(frozen=True)
class Target:
    """Where the result goes: the artifact directory and MLflow."""

    out: Path
    experiment: str
    register: str | None
    alias: str | None
    tracking_uri: str | None
    track: bool = True
    signing_key: str | None = None  # ORDERLIFT_ARTIFACT_SIGNING_KEY: sign the artifact before logging it


class _Display:
    """A progress display with a stage line and an epoch bar."""

    def __init__(self, progress: Progress, epochs: int | None) -> None:
        self.progress = progress
        self.stage: TaskID = progress.add_task("starting", total=None)
        self.epochs: TaskID = progress.add_task("epochs", total=epochs, visible=False)

    def on_stage(self, text: str) -> None:
        self.progress.update(self.stage, description=text)
        if text.startswith("fitting") and " all " in text:
            self.progress.update(self.epochs, visible=True, completed=0)

    def on_epoch(self, epoch: int, value: float | None) -> None:
        suffix = "" if value is None else f" (loss {value:.5f})"
        self.progress.update(self.epochs, completed=epoch + 1, description=f"epoch {epoch + 1}{suffix}")


@contextmanager
def _display(console: Console, epochs: int | None) -> Iterator[_Display]:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield _Display(progress, epochs)


def load_inputs(
    inputs: Inputs, spark: Any = None, weighting: Weighting | None = None, min_pair_count: int = 2
) -> Dataset:
    """Load the inputs with the local engine, or with Spark when a session is given."""
    if spark is None:
        return load_dataset(
            Path(inputs.events), inputs.fmt, inputs.items, weighting, inputs.min_user, inputs.min_item
        )
    from training.spark.dataset import load_dataset_spark

    return load_dataset_spark(
        spark,
        inputs.events,
        inputs.fmt,
        inputs.items,
        weighting,
        inputs.min_user,
        inputs.min_item,
        min_pair_count,
    )


def _load(
    inputs: Inputs, config: TrainConfig, show: _Display, spark: Any = None
) -> tuple[Dataset, dict[str, Any], dict[str, Any]]:
    began = time.perf_counter()
    where = "" if spark is None else f" in Spark ({inputs.spark_master})"
    show.on_stage(f"reading and validating {inputs.events}{where}")
    dataset = load_inputs(inputs, spark, config.weighting, config.min_pair_count)
    report = data_report(dataset.validation.report, dataset.events, dataset.interactions)
    if dataset.interactions.matrix.nnz == 0:
        rejected = {k: v for k, v in report["rejected"].items() if v}
        raise DataError(
            f"{inputs.events}: nothing to train on: {report['rows_read']:,} rows read, "
            f"{report['rows_accepted']:,} accepted, rejected {rejected or 'none'}"
        )
    data: dict[str, Any] = {
        "events_path": str(inputs.events),
        "items_path": None if inputs.items is None else str(inputs.items),
        "fingerprint": _fingerprint(inputs),
        "load_seconds": round(time.perf_counter() - began, 3),
        "mapping": dict(inputs.fmt.columns),
        "event_type": inputs.fmt.event_type,
        "min_user": inputs.min_user,
        "min_item": inputs.min_item,
        "engine": inputs.engine if spark is None else f"spark ({inputs.spark_master})",
        **{k: report[k] for k in ("rows_read", "rows_accepted", "users", "items")},
    }
    return dataset, report, data


def _fingerprint(inputs: Inputs) -> str:
    """Return the inputs' sha256, or "" for a directory or URI (Spark reads those; nothing hashes them)."""
    files = [Path(inputs.events), inputs.items]
    if not all(p is None or p.is_file() for p in files):
        return ""
    return fingerprint(*files)


def _summary(console: Console, config: TrainConfig, result: TrainResult, report: dict[str, Any]) -> None:
    where = ""
    if config.engine == "spark":
        fitted = "ALS by MLlib" if config.model == "als" else f"{config.model} on the driver"
        where = f"; read, validated and weighed by {result.manifest.record['data']['engine']}, {fitted}"
    console.print(
        f"data: {report['rows_accepted']:,} of {report['rows_read']:,} rows accepted, "
        f"{report['users']:,} users x {report['items']:,} items{where}"
    )
    ev = result.evaluation
    if ev is not None:
        split = ev.split
        console.print(
            f"holdout ({split['method']}, cutoff {split['cutoff']}): {split['test_users']:,} test users, "
            f"{split['test_users_unseen']:,} unseen in train (counted, not scored)"
        )
        render_metrics(config.model, ev.model, ev.baseline, console)
        if ev.cart is not None:
            render_carts(ev.cart.describe(), console)
        console.print(
            f"the artifact's model: {config.model} refit on all events given ({result.fit_seconds:.1f}s)"
        )
    else:
        console.print(f"no holdout: {config.model} fitted on all events given ({result.fit_seconds:.1f}s)")
    console.print(f"model artifact: {result.artifact}")


def train_and_log(console: Console, inputs: Inputs, config: TrainConfig, target: Target) -> TrainResult:
    """Run one training job end to end and print what a data scientist needs to judge it."""
    with inputs.session() as spark, _display(console, config.params.get("iterations")) as show:
        dataset, report, data = _load(inputs, config, show, spark)
        result = run_training(dataset, config, target.out, data, show.on_stage, show.on_epoch)
    _sign(console, result, target)
    _summary(console, config, result, report)
    if target.track:
        _log(console, result, config, report, target)
    return result


def sweep_and_log(
    console: Console,
    inputs: Inputs,
    config: TrainConfig,
    target: Target,
    grid: dict[str, list[Any]],
    metric: str,
    trials: int | None,
    budget_minutes: float | None = None,
) -> tuple[SweepResult, TrainResult]:
    """Search on a validation split of the train period, test the winner once, refit it, write it."""

    def on_trial(number: int, total: int, trial: Trial) -> None:
        console.print(
            f"trial {number}/{total} {trial.model} {trial.params}: "
            f"validation {metric} = {trial.metrics[metric]:.4f}"
        )

    auto = config.model == AUTO
    with _display(console, None) as show:
        dataset, report, data = _load(inputs, config, show)
        found = sweep(dataset, config, grid, metric, trials, on_trial, show.on_stage, budget_minutes)
        params = found.best.params if auto else {**config.params, **found.best.params}
        best = replace(config, model=found.best.model, params=params)
        extra = {
            "sweep": {
                "metric": metric,
                "grid": AUTO_GRID if auto else grid,
                "best_model": found.best.model,
                "best_params": found.best.params,
                "trials": [
                    {"model": t.model, "params": t.params, "validation": t.metrics}
                    for t in found.leaderboard()
                ],
                "skipped_by_budget": found.skipped,
                "test_cutoff": None if found.test_cutoff is None else found.test_cutoff.isoformat(),
            }
        }
        result = run_training(
            dataset, best, target.out, data, show.on_stage, show.on_epoch, evaluation=found.test, extra=extra
        )
    _sign(console, result, target)
    render_leaderboard(found, console)
    console.print(f"winner on validation {metric}: {found.best.model} {found.best.params}")
    _summary(console, best, result, report)
    if target.track:
        children = [
            (
                f"trial-{i}-{t.model}",
                {"model": t.model, "params": t.params},
                {f"val_{k}": v for k, v in t.metrics.items()},
            )
            for i, t in enumerate(found.trials, start=1)
        ]
        _log(console, result, best, report, target, children)
    return found, result


def _sign(console: Console, result: TrainResult, target: Target) -> None:
    """Sign the artifact when a signing key is set, before anything uploads it."""
    if target.signing_key:
        from features.artifact import sign_artifact

        sign_artifact(result.artifact, target.signing_key)
        console.print("model artifact signed (ORDERLIFT_ARTIFACT_SIGNING_KEY)")


def _log(
    console: Console,
    result: TrainResult,
    config: TrainConfig,
    report: dict[str, Any],
    target: Target,
    children: list[tuple[str, dict[str, Any], dict[str, float]]] | None = None,
) -> None:
    from training import tracking
    from training.plots import plot_cart_models, plot_metrics_at_k

    uri = tracking.configure(target.tracking_uri)
    artifacts = {"reports": tracking.temporary_artifact("data_report.json", report)}
    if result.evaluation is not None:
        png = tracking.temporary_artifact("metrics.json", result.evaluation.flat()).with_name(
            "metrics_at_k.png"
        )
        artifacts["plots"] = plot_metrics_at_k(result.evaluation, config.ks, png, config.model)
        carts = plot_cart_models(result.evaluation, config.ks, png.with_name("crosssell_at_k.png"))
        if carts is not None:
            artifacts["plots/crosssell"] = carts
    params = {
        **config.describe(),
        "params": result.manifest.model.params,
        "data": {k: v for k, v in result.manifest.record["data"].items() if k != "fingerprint"},
    }
    metrics = result.evaluation.flat() if result.evaluation is not None else {}
    metrics["fit_seconds"] = result.fit_seconds
    logged = tracking.log_run(
        experiment=target.experiment,
        params=params,
        metrics=metrics,
        epochs=result.epochs,
        tags={"data_fingerprint": result.manifest.data_fingerprint or "", "model_kind": config.model},
        artifact=result.artifact,
        artifacts=artifacts,
        register=target.register,
        alias=target.alias,
        run_name=config.model if not children else f"{config.model}-sweep",
        children=children or (),
    )
    console.print(f"mlflow: run {logged.run_id} in experiment {target.experiment!r} ({uri})")
    if logged.model_version is not None:
        console.print(f"registered: models:/{target.register}/{logged.model_version}, alias @{target.alias}")
