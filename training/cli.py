"""The ``orderlift`` command line: generate, inspect, kpis, hash-id, train, compare, promote, sweep, serve."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import nullcontext
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer

from training.console import console, one_line_errors
from training.errors import OptionError
from training.lifecycle import compare, promote, sweep, train
from training.options import SourceOptions, with_source

__all__ = ["app", "main"]

app = typer.Typer(
    name="orderlift",
    help="Recommendations that raise average order value.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
@one_line_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="Directory for events.csv and items.csv.")],
    users: Annotated[int, typer.Option(min=1)] = 5000,
    items: Annotated[int, typer.Option(min=2)] = 2000,
    days: Annotated[int, typer.Option(min=1)] = 90,
    seed: int = 7,
    events_per_user: Annotated[float | None, typer.Option(help="Scale the volume.")] = None,
    dislike_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Share of shoppers who dismiss their favourite's two best sellers."
        ),
    ] = 0.0,
) -> None:
    """Generate a synthetic store (events.csv, items.csv, truth.json)."""
    from features.synthetic import generate_store, write_store

    with console.status("generating the store"):
        store = generate_store(
            users=users, items=items, days=days, seed=seed, events_per_user=events_per_user,
            dislike_share=dislike_share,
        )  # fmt: skip
        paths = write_store(store, out)
    console.print(
        f"wrote {len(store.events):,} events for {users:,} users and {items:,} items "
        f"to {paths['events']} and {paths['items']}"
    )


@app.command()
@one_line_errors
@with_source
def inspect(
    source: SourceOptions,
    quarantine: Annotated[
        Path | None,
        typer.Option("--quarantine", help="Write rejected rows with their reasons here."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    top: Annotated[int, typer.Option(min=1, help="How many top items to list.")] = 10,
    engine: Annotated[str, typer.Option(help="local, or spark: read and validate in Spark.")] = "local",
    spark_master: Annotated[str, typer.Option(help="--engine spark: local[*], spark://HOST:PORT, yarn.")] = (
        "local[*]"
    ),
) -> None:
    """Print a data report: rows read and rejected by reason, users, items, baskets, top items."""
    from features.report import data_report
    from training.run import Inputs, load_inputs

    inputs = Inputs(source.events, source.items, source.format(), engine=engine, spark_master=spark_master)
    with inputs.session() as spark, nullcontext() if as_json else console.status(f"reading {source.events}"):
        dataset = load_inputs(inputs, spark)
    if quarantine is not None:
        dataset.validation.write_quarantine(quarantine)
    report = data_report(
        dataset.validation.report, dataset.events, dataset.interactions, top=top, anonymous=dataset.anonymous
    )
    if quarantine is not None:
        report["quarantine"] = str(quarantine)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from training.display import render_data_report

    render_data_report(report, console)
    console.print(
        f"anonymous orders kept for cart models: {report['anonymous_orders']:,} orders, "
        f"{report['anonymous_rows']:,} rows"
    )
    if quarantine is not None:
        console.print(f"rejected rows written to {quarantine}")


class KpiPeriod(StrEnum):
    """The period of a KPI series."""

    WEEK = "week"
    MONTH = "month"


@app.command()
@one_line_errors
@with_source
def kpis(
    source: SourceOptions,
    by: Annotated[KpiPeriod, typer.Option(help="Period of the series: week or month.")] = KpiPeriod.MONTH,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Also write the series here as CSV.")] = None,
) -> None:
    """Print the shop's KPIs per week or month: conversion, order value, discount rate, frequency."""
    from features.dataset import load_catalog
    from features.kpis import history_kpis, series_csv
    from features.validate import load_events

    fmt = source.format()
    with nullcontext() if as_json else console.status(f"reading {source.events}"):
        result = load_events(source.events_path, fmt)
        catalog = load_catalog(source.items, fmt.item_columns) if source.items is not None else None
        series = history_kpis(result.events, result.anonymous, catalog).series(by.value)
    if csv_out is not None:
        csv_out.parent.mkdir(parents=True, exist_ok=True)
        csv_out.write_text(series_csv({"history": series}))
    if as_json:
        typer.echo(json.dumps(series, indent=2))
        return
    from training.display import render_kpis

    render_kpis(series, console)
    if csv_out is not None:
        console.print(f"wrote the series to {csv_out}")


@app.command("hash-id")
@one_line_errors
def hash_id_command(
    values: Annotated[
        list[str] | None, typer.Argument(help="E-mail addresses (or other ids); none: one per stdin line.")
    ] = None,
) -> None:
    """Print the pseudonymous id of each value, as presets that hash e-mails store it."""
    from features.identity import hash_id, id_salt

    salt = id_salt()
    for value in values if values else (line.rstrip("\n") for line in sys.stdin):
        if value.strip():
            typer.echo(hash_id(value, salt))


@app.command("batch-score")
@one_line_errors
def batch_score(
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="A registered MLflow Model: models:/orderlift@production.")
    ],
    out: Annotated[Path, typer.Option("--out", help="A Parquet directory: user_id, item_ids, scores.")],
    users: Annotated[
        Path | None, typer.Option("--users", help="A CSV or Parquet file with user_id (default: every user).")
    ] = None,
    n: Annotated[int, typer.Option(min=1, max=100, help="Recommendations per user.")] = 10,
    spark_master: Annotated[
        str, typer.Option(help="local[*] (embedded), spark://HOST:PORT, yarn.")
    ] = "local[*]",
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."),
    ] = None,
) -> None:
    """Score every user with the MLflow Model in Spark (mlflow.pyfunc.spark_udf): a batch export."""
    from training import tracking
    from training.spark.batch import score_users
    from training.spark.session import spark_session

    tracking.configure(tracking_uri)
    with spark_session(spark_master) as spark, console.status(f"scoring users with {model_uri} in Spark"):
        scored, count = score_users(spark, model_uri, n, users)
        scored.write.mode("overwrite").parquet(str(out))
    console.print(f"wrote {n} recommendations for each of {count:,} users to {out}")


events_app = typer.Typer(help="The service's live events.", no_args_is_help=True)
experiments_app = typer.Typer(help="A/B experiments over live events.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(experiments_app, name="experiments")

LogOpt = Annotated[Path, typer.Option("--log", help="Embedded mode's event log (ORDERLIFT_EVENT_LOG).")]
RedisOpt = Annotated[
    str | None, typer.Option("--redis-url", help="Read the Redis stream instead of the file.")
]


def _logged_events(log: Path, redis_url: str | None) -> list[dict[str, Any]]:
    from features.eventlog import read_jsonl, read_stream

    if redis_url:
        return read_stream(redis_url)
    if not log.exists():
        raise OptionError(f"{log}: no event log here (give --log, or --redis-url for Redis mode)")
    return read_jsonl(log)[0]


@events_app.command("export")
@one_line_errors
def events_export(
    out: Annotated[
        Path, typer.Option("--out", help="Parquet (or .csv) file in the pipeline's event format.")
    ],
    log: LogOpt = Path("events/events.jsonl"),
    redis_url: RedisOpt = None,
    append_to: Annotated[
        Path | None, typer.Option("--append-to", help="A history file (canonical columns) to put first.")
    ] = None,
) -> None:
    """Write logged views, carts and purchases (clicks as views) for ``orderlift train``."""
    import pandas as pd

    from features.eventlog import to_pipeline_frame

    frame = to_pipeline_frame(_logged_events(log, redis_url))
    if append_to is not None:
        history = pd.read_parquet(append_to) if append_to.suffix == ".parquet" else pd.read_csv(append_to)
        frame = pd.concat([history, frame], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.astype({"user_id": str, "item_id": str}).to_parquet(out, index=False)
    console.print(f"wrote {len(frame):,} events to {out}")


@experiments_app.command("report")
@one_line_errors
def experiments_report(
    log: LogOpt = Path("events/events.jsonl"),
    redis_url: RedisOpt = None,
    control: Annotated[str | None, typer.Option(help="Control variant (default: most impressions).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print conversion, order value and revenue per variant, with differences to the control."""
    import json

    import pandas as pd

    from features.attribution import experiment_report
    from training.display import render_experiment

    columns = [
        "event_id",
        "user_id",
        "item_id",
        "type",
        "timestamp",
        "order_id",
        "quantity",
        "price",
        "variant",
    ]
    frame = pd.DataFrame.from_records(_logged_events(log, redis_url), columns=columns)
    found = experiment_report(frame, control)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    render_experiment(found, console)


for command in (train, sweep, compare, promote):
    app.command()(command)


def _plugins() -> None:
    """Add the commands other parts of orderlift register (the service's serve and precompute)."""
    for entry in entry_points(group="orderlift.commands"):
        entry.load()(app)


_plugins()


def main() -> None:
    """Run the command line."""
    app()
