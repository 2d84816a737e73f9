"""The service's commands, added to ``orderlift`` through an entry point: serve and precompute."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

__all__ = ["register"]


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
    batch: Annotated[int, typer.Option(min=1, help="Users scored per batch.")] = 2048,
) -> None:
    """Write every known user's recommendations into the cache, so the first request is a hit."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("precomputing", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

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


def register(app: typer.Typer) -> None:
    """Add the service's commands to the ``orderlift`` app."""
    app.command()(serve)
    app.command()(precompute)
