"""The service's commands, added to ``orderlift`` through an entry point: serve, precompute, export."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register"]


class Format(StrEnum):
    """A campaign file's format."""

    CSV = "csv"
    PARQUET = "parquet"


def serve(
    model_uri: Annotated[
        str | None,
        typer.Option(help="Model artifact directory or models:/NAME@ALIAS (default $ORDERLIFT_MODEL_URI)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each loads the model once).")] = 1,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis for the cache and events (default: none).")
    ] = None,
    allow_open: Annotated[
        bool, typer.Option("--allow-open", help="Serve without keys although deployed (not recommended).")
    ] = False,
    local_workers: Annotated[
        bool,
        typer.Option("--local-workers", help="Several workers without Redis, each with its own state."),
    ] = False,
) -> None:
    """Serve recommendations over HTTP (uvicorn); settings come from ORDERLIFT_* variables."""
    from service.observability import configure_logging
    from service.workers import WorkersFailed, run_workers

    if model_uri:
        os.environ["ORDERLIFT_MODEL_URI"] = model_uri
    if redis_url:
        os.environ["ORDERLIFT_REDIS_URL"] = redis_url
    if allow_open:
        os.environ["ORDERLIFT_ALLOW_OPEN"] = "1"
    if local_workers:
        os.environ["ORDERLIFT_LOCAL_WORKERS"] = "1"
    refusal = _refusal(_settings(), host, workers)
    if refusal:
        typer.echo(f"error: {refusal}", err=True)
        raise typer.Exit(2)
    if not os.environ.get("ORDERLIFT_MODEL_URI"):
        raise typer.BadParameter("give --model-uri or set ORDERLIFT_MODEL_URI", param_hint="--model-uri")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    configure_logging()
    try:
        run_workers("service.app:app_from_env", host, port, workers, factory=True)
    except OSError as exc:  # the port is taken, or the host is not ours
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    except WorkersFailed as exc:
        typer.echo(f"error: {exc}; see the workers' log lines above", err=True)
        raise typer.Exit(1) from None


def _settings() -> Any:
    """Return the Settings from the environment, or exit 2 naming every bad variable."""
    from pydantic import ValidationError

    from service.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"ORDERLIFT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        typer.echo(f"error: {problems}", err=True)
        raise typer.Exit(2) from None


def _refusal(settings: Any, host: str, workers: int) -> str | None:
    """Return why serving like this is refused: open although deployed, or workers that disagree."""
    if workers > 1 and not settings.redis_url and not settings.local_workers:
        return (
            f"--workers {workers} without ORDERLIFT_REDIS_URL: each worker would keep its own cache, live "
            "history and event ids (a purchase posted to one is unknown to the others); set "
            "ORDERLIFT_REDIS_URL, or pass --local-workers (ORDERLIFT_LOCAL_WORKERS=1) if that is meant"
        )
    return settings.open_refusal(host)


def precompute(
    model_uri: Annotated[
        str | None,
        typer.Option(help="Model artifact directory or models:/NAME@ALIAS (default $ORDERLIFT_MODEL_URI)."),
    ] = None,
    redis_url: Annotated[
        str | None, typer.Option(help="Redis to fill (default $ORDERLIFT_REDIS_URL).")
    ] = None,
    n: Annotated[int, typer.Option(min=1, max=100, help="Items per user, as the storefront asks.")] = 10,
    batch: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="Users scored per batch (default: ~4M scores).")
    ] = None,
) -> None:
    """Write every known user's recommendations into the cache, so the first request is a hit."""
    from rich.console import Console

    from service.config import Settings
    from service.loading import LoadError
    from service.precompute import precompute_users

    console = Console()
    settings = Settings()
    settings = settings.model_copy(
        update={"model_uri": model_uri or settings.model_uri, "redis_url": redis_url or settings.redis_url}
    )
    if not settings.redis_url:
        console.print("[red]error:[/red] precompute fills Redis: give --redis-url or set ORDERLIFT_REDIS_URL")
        raise typer.Exit(2)
    try:
        with _progress(console, "precomputing") as advance:
            found = precompute_users(settings, n=n, batch=batch, on_batch=advance)
    except LoadError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"wrote {found.users:,} users' recommendations for {found.version} ({found.variant}) in "
        f"{found.seconds:.1f}s: {found.users / max(found.seconds, 1e-9):,.0f} users/s"
        + (
            f"; skipped {found.skipped:,} with live history (the service answers them)"
            if found.skipped
            else ""
        )
    )


@contextmanager
def _progress(console: Any, label: str) -> Iterator[Callable[[int, int], None]]:
    """Show a progress bar; yield the callback that advances it to (done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def _checked_name(value: str | None, option: str) -> str | None:
    """Return a placement or channel name, or exit 2 naming the option and the value."""
    import re

    from service.schemas import PLACEMENT_PATTERN

    if value is not None and not re.fullmatch(PLACEMENT_PATTERN, value):
        typer.echo(f"error: {option} {value!r}: use 1-40 of a-z, 0-9, _ and -", err=True)
        raise typer.Exit(2)
    return value


def export_recommendations(
    out: Annotated[Path, typer.Option(help="File to write (.csv or .parquet, by --format).")],
    model_uri: Annotated[
        str | None,
        typer.Option(help="Model artifact directory or models:/NAME@ALIAS (default $ORDERLIFT_MODEL_URI)."),
    ] = None,
    placement: Annotated[
        str, typer.Option(help="Placement the list is for: rules aimed at it apply, ids carry it.")
    ] = "email",
    channel: Annotated[str | None, typer.Option(help="Channel (email, push...), carried in the ids.")] = None,
    n: Annotated[int, typer.Option(min=1, max=100, help="Items per user.")] = 6,
    fmt: Annotated[Format, typer.Option("--format", help="csv or parquet.")] = Format.CSV,
    max_per_category: Annotated[
        int | None, typer.Option(min=1, max=100, help="At most this many items of one category per list.")
    ] = None,
    batch: Annotated[
        int | None, typer.Option(min=1, max=100_000, help="Users scored per batch (default: ~4M scores).")
    ] = None,
    horizon_days: Annotated[
        int, typer.Option(min=1, max=365, help="--placement reorder: what falls due within this many days.")
    ] = 30,
) -> None:
    """Write every known user's recommendations to a file for an e-mail or push campaign.

    Each user's list leaves out what they bought and dismissed (in training and in the live
    events since, read from the service's event log or Redis stream), follows the rules in force
    for the placement (from Redis when ORDERLIFT_REDIS_URL is set, else the rules file) and has one
    recommendation_id naming the variant the service serves this model as; send clicks and orders
    back as events with it to attribute them. With
    ``--placement reorder`` the lists are buy-again lists instead: each customer's own past items,
    the most due first (as ``GET /v1/users/{id}/reorder`` answers).
    """
    from datetime import UTC, datetime

    from redis.exceptions import RedisError
    from rich.console import Console

    from features.eventlog import read_jsonl, read_stream
    from service.answers import View
    from service.export import export_recommendations as export
    from service.export import live_left_out
    from service.loading import LoadError, load
    from service.reorder import REORDER
    from service.rule_store import read_rules
    from service.scorer import Scorer
    from service.variants import parse_variants

    console = Console()
    settings = _settings()
    settings = settings.model_copy(update={"model_uri": model_uri or settings.model_uri})
    if not settings.model_uri:
        raise typer.BadParameter("give --model-uri or set ORDERLIFT_MODEL_URI", param_hint="--model-uri")
    view = View(
        _checked_name(placement, "--placement"), max_per_category, _checked_name(channel, "--channel")
    )
    try:
        try:
            named = [v.name for v in parse_variants(settings) if v.uri == settings.model_uri]
        except LoadError:  # a split over aliases while exporting a directory: not one of them
            named = []
        scorer = Scorer(
            load(settings.model_uri, settings.mlflow_tracking_uri, settings.verify_artifact),
            settings,
            named[0] if named else "default",
        )
        url = settings.events_redis_url or settings.redis_url
        logged = read_stream(url) if url else read_jsonl(settings.event_log)[0]
        live = live_left_out(scorer, logged, datetime.now(UTC))
        reorder = view.placement == REORDER
        if reorder and scorer.loaded.artifact.reorder is None:
            console.print(f"[red]error:[/red] {settings.model_uri} has no purchase history: retrain it")
            raise typer.Exit(2)
        rules, _ = view.shape(read_rules(settings), scorer, REORDER if reorder else "user")
        with _progress(console, "exporting") as advance:
            found = export(
                scorer, out, n, rules, view.placement, view.channel, fmt.value, advance, batch,
                horizon_days if reorder else None, live,
            )  # fmt: skip
    except LoadError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except RedisError as exc:
        console.print(f"[red]error:[/red] cannot read the rules from Redis: {exc}")
        raise typer.Exit(2) from None
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    console.print(
        f"wrote {found.rows:,} rows for {found.users:,} users to {out} "
        f"(model {found.version}, variant {found.variant}, placement {view.placement}, "
        f"channel {view.channel or '-'}; {len(logged):,} live events read)"
    )


def register(app: typer.Typer) -> None:
    """Add the service's commands to the ``orderlift`` app."""
    app.command()(serve)
    app.command()(precompute)
    app.command("export-recommendations")(export_recommendations)
