"""Commands for a model's life: train, sweep, compare, promote."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from features.artifact import SIGNING_KEY_VARIABLES
from training.console import console, one_line_errors
from training.errors import OptionError
from training.options import SourceOptions, TargetOptions, parse_value, with_source, with_target

__all__ = ["compare", "promote", "sweep", "train"]


HoldoutOpt = Annotated[
    str, typer.Option("--holdout", help="Latest share of events that tests (e.g. 0.2), or 'none'.")
]
HoldoutDate = Annotated[
    str | None, typer.Option("--holdout-date", help="Test on events from this date on (overrides --holdout).")
]


def _holdout(value: str) -> float | None:
    if value.strip().lower() == "none":
        return None
    try:
        share = float(value)
    except ValueError:
        raise OptionError(f"--holdout must be a number between 0 and 1 or 'none', got {value!r}") from None
    if not 0.0 < share < 1.0:
        raise OptionError(f"--holdout must be between 0 and 1 (exclusive), got {value!r}")
    return share


def _weights(values: list[str] | None) -> dict[str, float]:
    from features.io import parse_mapping
    from features.schema import DEFAULT_WEIGHTS

    weights = dict(DEFAULT_WEIGHTS)
    for name, raw in parse_mapping(values).items():
        try:
            weights[name] = float(raw)
        except ValueError:
            raise OptionError(f"--weights {name}={raw!r} is not a number") from None
    return weights


def _weighting(weights: list[str] | None, half_life_days: float | None, dismissals: str) -> Any:
    """Return the Weighting the options describe; a bad value is an OptionError naming the option."""
    from features.errors import InvalidParameter
    from features.matrix import Weighting

    try:
        return Weighting(weights=_weights(weights), half_life_days=half_life_days, dismissals=dismissals)  # type: ignore[arg-type]
    except InvalidParameter as exc:
        raise OptionError(f"--dismissals: {exc}" if "dismissals" in str(exc) else str(exc)) from None


def _model_params(given: dict[str, Any], extra: list[str] | None) -> dict[str, Any]:
    from features.io import parse_mapping

    params = {k: v for k, v in given.items() if v is not None}
    for name, raw in parse_mapping(extra).items():
        params[name] = parse_value(raw)
    return params


@one_line_errors
@with_source
@with_target
def train(
    source: SourceOptions,
    target: TargetOptions,
    model: Annotated[
        str, typer.Option("--model", help="als, bpr, lmf, cosine, bm25, tfidf, popular, ease.")
    ] = "als",
    factors: Annotated[int | None, typer.Option(min=1, help="Latent factors (als, bpr, lmf).")] = None,
    iterations: Annotated[int | None, typer.Option(min=1, help="Training epochs.")] = None,
    regularization: Annotated[float | None, typer.Option(min=0.0, help="L2 regularisation.")] = None,
    alpha: Annotated[float | None, typer.Option(min=0.0, help="ALS confidence scaling.")] = None,
    learning_rate: Annotated[float | None, typer.Option(min=0.0, help="bpr, lmf.")] = None,
    neighbours: Annotated[int | None, typer.Option(min=1, help="Item-kNN neighbours.")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Any model parameter, name=value.")
    ] = None,
    weights: Annotated[
        list[str] | None, typer.Option("--weights", help="Event weights, e.g. view=1,cart=4,purchase=10.")
    ] = None,
    half_life_days: Annotated[float | None, typer.Option(min=0.0, help="Time decay half-life.")] = None,
    dismissals: Annotated[
        str,
        typer.Option(
            help="exclude: a pair the shopper dismissed (after any cart or purchase) adds nothing; keep."
        ),
    ] = "exclude",
    min_user: Annotated[int, typer.Option(min=1, help="k-core: min distinct items per user.")] = 1,
    min_item: Annotated[int, typer.Option(min=1, help="k-core: min distinct users per item.")] = 1,
    holdout: HoldoutOpt = "0.2",
    holdout_date: HoldoutDate = None,
    device: Annotated[
        str, typer.Option(help="cpu, or gpu: implicit's CUDA models (als, bpr); the artifact is the same.")
    ] = "cpu",
    engine: Annotated[
        str,
        typer.Option(help="local, or spark: read, validate, weigh, count baskets and fit ALS in Spark."),
    ] = "local",
    spark_master: Annotated[
        str, typer.Option(help="--engine spark: local[*] (embedded), spark://HOST:PORT, yarn, k8s://...")
    ] = "local[*]",
    spark_conf: Annotated[
        list[str] | None, typer.Option("--spark-conf", help="--engine spark: a Spark setting, KEY=VALUE.")
    ] = None,
) -> None:
    """Train a model, evaluate it beside popularity, write the refit's artifact, log and register it."""
    from training.job import TrainConfig
    from training.run import train_and_log

    hyper = dict(
        factors=factors,
        iterations=iterations,
        regularization=regularization,
        alpha=alpha,
        learning_rate=learning_rate,
        neighbours=neighbours,
    )
    params = _model_params(hyper, param)
    if model == "als" and "report_loss" not in params:
        params["report_loss"] = target.track  # the per-epoch loss costs ~15% of the fit; it is for MLflow
    inputs = replace(
        _inputs(source),
        min_user=min_user,
        min_item=min_item,
        engine=engine,
        spark_master=spark_master,
        spark_conf=_spark_conf(spark_conf),
    )
    if engine == "spark" and device != "cpu":
        raise OptionError("--engine spark fits on the cluster's CPUs; --device gpu is for --engine local")
    config = TrainConfig(
        model=model,
        params=params,
        weighting=_weighting(weights, half_life_days, dismissals),
        holdout=_holdout(holdout),
        holdout_date=holdout_date,
        device=device,
        engine=engine,
    )
    config.new_model()  # fail fast on an unknown model, parameter or device
    train_and_log(console, inputs, config, _target(target, model))


def _spark_conf(pairs: list[str] | None) -> dict[str, str]:
    """Parse ``--spark-conf KEY=VALUE`` options."""
    conf = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().startswith("spark."):
            raise OptionError(f"--spark-conf {pair!r}: give KEY=VALUE with a spark.* key")
        conf[key.strip()] = value.strip()
    return conf


def _inputs(source: SourceOptions) -> Any:
    from training.run import Inputs

    return Inputs(source.events, source.items, source.format())  # events as given: a URI stays one


def _target(options: TargetOptions, model: str) -> Any:
    from training.run import Target

    o = options
    name = None if (o.register or "").lower() in {"", "none"} else o.register
    key = next((os.environ[v] for v in SIGNING_KEY_VARIABLES if os.environ.get(v)), None)  # never a flag
    return Target(
        o.out or Path("artifacts") / model, o.experiment, name, o.alias, o.tracking_uri, o.track, key
    )


@one_line_errors
@with_source
@with_target
def sweep(
    source: SourceOptions,
    target: TargetOptions,
    grid: Annotated[
        list[str] | None, typer.Option("--grid", help="Candidates, e.g. factors=32,64,128 (repeatable).")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="Model kind to tune, or auto: every family and its key parameters.")
    ] = "als",
    trials: Annotated[int | None, typer.Option(min=1, help="Random search: this many grid points.")] = None,
    metric: Annotated[str, typer.Option(help="Validation metric to maximise.")] = "ndcg_at_10",
    holdout: HoldoutOpt = "0.2",
    holdout_date: HoldoutDate = None,
    seed: Annotated[int, typer.Option(help="Seed of the random search.")] = 42,
    budget: Annotated[
        float | None,
        typer.Option(min=0.0, help="Minutes: start no trial after this (each family still gets one)."),
    ] = None,
) -> None:
    """Tune a model (or, with --model auto, choose one) on a validation split; test the winner once."""
    from training.job import TrainConfig
    from training.models import create_model
    from training.run import sweep_and_log
    from training.sweep import AUTO, parse_grid

    if model == AUTO:
        if grid:
            raise OptionError("--model auto searches its own grid (training/sweep.py AUTO_GRID); drop --grid")
        space: dict[str, list[Any]] = {}
    else:
        if not grid:
            raise OptionError("give --grid name=v1,v2,... (or --model auto)")
        space = parse_grid(grid)
        for name, values in space.items():
            create_model(model, **{name: values[0]})  # fail fast on an unknown parameter
    config = TrainConfig(model=model, holdout=_holdout(holdout), holdout_date=holdout_date, seed=seed)
    inputs = _inputs(source)
    where = _target(target, model)
    sweep_and_log(console, inputs, config, where, space, metric, trials, budget)


@one_line_errors
def compare(
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "orderlift",
    metric: Annotated[str, typer.Option(help="Metric to rank by.")] = "ndcg_at_10",
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 20,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the experiment's runs ranked by a metric, with their key params."""
    from training import tracking
    from training.display import render_runs

    tracking.configure(tracking_uri)
    runs = tracking.compare_runs(experiment, metric, limit)
    if as_json:
        typer.echo(runs.to_json(orient="records", date_format="iso", indent=2))
        return
    render_runs(runs, metric, console)


@one_line_errors
def promote(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")] = "orderlift",
    version: Annotated[str | None, typer.Option(help="Model version to promote.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Or the run id that registered it.")] = None,
    from_alias: Annotated[
        str | None, typer.Option(help="Or the version behind this alias (e.g. candidate).")
    ] = None,
    alias: Annotated[str, typer.Option(help="Alias to move.")] = "production",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
) -> None:
    """Move an alias (e.g. production) to a model version."""
    from training import tracking

    if sum(x is not None for x in (version, run, from_alias)) != 1:
        raise OptionError("give exactly one of --version, --run or --from-alias")
    tracking.configure(tracking_uri)
    chosen = tracking.promote(model, alias, version=version, run_id=run, from_alias=from_alias)
    console.print(f"models:/{model}@{alias} -> version {chosen}")
