"""Command-line options shared by the commands that read a shop's events.

``with_source`` gives a command the ten options of where its events come from and how to read
them (``--events``, ``--items``, ``--preset``, ``--map``, ...) as one ``source: SourceOptions``
argument, and ``with_target`` the six of where its model artifact goes (``--out``, ``--experiment``,
``--register``, ...) as ``target: TargetOptions``: each group is declared once here, and a new
option is one field of its dataclass.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer

from features.identity import id_salt
from features.io import SourceFormat, parse_mapping, resolve_format

__all__ = ["SourceOptions", "TargetOptions", "option_group", "parse_value", "with_source", "with_target"]


@dataclass(frozen=True)
class SourceOptions:
    """Where a command's events come from, and how to read them."""

    events: Annotated[
        str,
        typer.Option(
            "--events",
            help="Events file: CSV, CSV.gz or Parquet; with --engine spark also a directory or a URI "
            "(s3a://, hdfs://, ...).",
        ),
    ]
    items: Annotated[
        Path | None,
        typer.Option(help="Optional items catalog (item_id, name, category, price, cost, in_stock)."),
    ] = None
    items_map: Annotated[
        list[str] | None,
        typer.Option(help="Catalog column mapping, e.g. cost=UnitCost,price=ListPrice (repeatable)."),
    ] = None
    preset: Annotated[
        str | None, typer.Option(help="Named export layout: online-retail, shopify, woocommerce or ga4.")
    ] = None
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="Column mapping, e.g. user_id=CustomerID,item_id=StockCode (repeatable)."),
    ] = None
    event_type: Annotated[
        str | None, typer.Option(help="Give every row this type: view, cart or purchase.")
    ] = None
    event_map: Annotated[
        list[str] | None,
        typer.Option(help="Map the shop's event names, e.g. view=pageview,cart=add_to_cart."),
    ] = None
    cancel_prefix: Annotated[
        str | None, typer.Option(help="Order ids starting with this are cancellations.")
    ] = None
    non_product: Annotated[
        list[str] | None,
        typer.Option(help="Regex (full match) of item ids that are not products (repeatable)."),
    ] = None
    timestamp_format: Annotated[
        str | None, typer.Option(help="strftime format; default ISO 8601, then guessed.")
    ] = None
    timezone: Annotated[str | None, typer.Option(help="Zone of naive timestamps (default UTC).")] = None

    @property
    def events_path(self) -> Path:
        """Return the events as a local path (every engine but Spark reads only those)."""
        return Path(self.events)

    def format(self) -> SourceFormat:
        """Return the SourceFormat these options describe."""
        shop_names = {shop: ours for ours, shop in parse_mapping(self.event_map).items()}
        return resolve_format(
            self.preset,
            parse_mapping(self.mapping),
            self.event_type,
            shop_names,
            parse_mapping(self.items_map),
            cancel_prefix=self.cancel_prefix,
            non_product_patterns=tuple(self.non_product) if self.non_product else None,
            timestamp_format=self.timestamp_format,
            timezone=self.timezone,
            id_salt=id_salt() or None,
        )


@dataclass(frozen=True)
class TargetOptions:
    """Where a trained model artifact goes: its directory and MLflow."""

    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "orderlift"
    register: Annotated[str | None, typer.Option(help="Registered model name; 'none' to skip.")] = "orderlift"
    alias: Annotated[str, typer.Option(help="Alias given to the new version.")] = "candidate"
    out: Annotated[Path | None, typer.Option(help="Artifact directory (default artifacts/<model>).")] = None
    tracking_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."),
    ] = None
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the run(s) to MLflow.")] = True


def parse_value(raw: str) -> Any:
    """Return a command-line parameter value as an int, a float, a bool, None, or the text itself."""
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            continue
    return {"true": True, "false": False, "none": None}.get(raw.lower(), raw)


C = TypeVar("C", bound=Callable[..., Any])


def option_group(group: type[Any], name: str, lead: int = 0) -> Callable[[C], C]:
    """Return a decorator that adds ``group``'s fields to a command's options, handed over as ``name``.

    The group's first ``lead`` fields come before the command's own options (``--events`` first),
    the rest after them.
    """
    hints = get_type_hints(group, include_extras=True)
    keyword = inspect.Parameter.KEYWORD_ONLY
    added = [
        inspect.Parameter(
            f.name, keyword, annotation=hints[f.name],
            default=inspect.Parameter.empty if f.default is MISSING else f.default,
        )
        for f in fields(group)
    ]  # fmt: skip

    def decorate(command: C) -> C:
        own = get_type_hints(command, include_extras=True)
        kept = [
            p.replace(kind=keyword, annotation=own.get(p.name, p.annotation))
            for p in inspect.signature(command).parameters.values()
            if p.name != name
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            options = group(**{f.name: kwargs.pop(f.name) for f in fields(group)})
            return command(**{name: options}, **kwargs)

        wrapper.__signature__ = inspect.Signature([*added[:lead], *kept, *added[lead:]])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in (*added, *kept)}
        del wrapper.__wrapped__  # typer reads the signature above, not the command's own
        return wrapper  # type: ignore[return-value]

    return decorate


with_source = option_group(SourceOptions, "source", lead=1)
with_target = option_group(TargetOptions, "target")
