"""Command-line options shared by the commands that read a shop's events.

``with_source`` gives a command the ten options of where its events come from and how to read
them (``--events``, ``--items``, ``--preset``, ``--map``, ...) as one ``source: SourceOptions``
argument, and ``with_target`` the six of where its bundle goes (``--out``, ``--experiment``,
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

from features.io import SourceFormat, parse_mapping, resolve_format

__all__ = [
    "CancelPrefix",
    "EventMap",
    "EventTypeOpt",
    "EventsPath",
    "ItemsPath",
    "MapOpt",
    "NonProduct",
    "PresetOpt",
    "SourceOptions",
    "TargetOptions",
    "TimestampFormat",
    "Timezone",
    "option_group",
    "parse_value",
    "source_format",
    "with_source",
    "with_target",
]

EventsPath = Annotated[Path, typer.Option("--events", help="Events file: CSV, CSV.gz or Parquet.")]
ItemsPath = Annotated[
    Path | None,
    typer.Option("--items", help="Optional items catalog (item_id, name, category, price, in_stock)."),
]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="Named column layout, e.g. online-retail.")]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column mapping, e.g. user_id=CustomerID,item_id=StockCode (repeatable)."),
]
EventTypeOpt = Annotated[
    str | None,
    typer.Option("--event-type", help="Give every row this type: view, cart or purchase."),
]
EventMap = Annotated[
    list[str] | None,
    typer.Option("--event-map", help="Map the shop's event names, e.g. view=pageview,cart=add_to_cart."),
]
CancelPrefix = Annotated[
    str | None,
    typer.Option("--cancel-prefix", help="Order ids starting with this are cancellations."),
]
NonProduct = Annotated[
    list[str] | None,
    typer.Option("--non-product", help="Regex (full match) of item ids that are not products (repeatable)."),
]
TimestampFormat = Annotated[
    str | None,
    typer.Option("--timestamp-format", help="strftime format; default ISO 8601, then guessed."),
]
Timezone = Annotated[str | None, typer.Option("--timezone", help="Zone of naive timestamps (default UTC).")]


def source_format(
    preset: str | None,
    mapping: list[str] | None,
    event_type: str | None,
    event_map: list[str] | None,
    cancel_prefix: str | None,
    non_product: list[str] | None,
    timestamp_format: str | None,
    timezone: str | None,
) -> SourceFormat:
    """Build the SourceFormat from the command-line options."""
    shop_names = {shop: ours for ours, shop in parse_mapping(event_map).items()}
    return resolve_format(
        preset,
        parse_mapping(mapping),
        event_type,
        shop_names,
        cancel_prefix=cancel_prefix,
        non_product_patterns=tuple(non_product) if non_product else None,
        timestamp_format=timestamp_format,
        timezone=timezone,
    )


@dataclass(frozen=True)
class SourceOptions:
    """Where a command's events come from, and how to read them."""

    events: EventsPath
    items: ItemsPath = None
    preset: PresetOpt = None
    mapping: MapOpt = None
    event_type: EventTypeOpt = None
    event_map: EventMap = None
    cancel_prefix: CancelPrefix = None
    non_product: NonProduct = None
    timestamp_format: TimestampFormat = None
    timezone: Timezone = None

    def format(self) -> SourceFormat:
        """Return the SourceFormat these options describe."""
        return source_format(
            self.preset, self.mapping, self.event_type, self.event_map, self.cancel_prefix,
            self.non_product, self.timestamp_format, self.timezone,
        )  # fmt: skip


@dataclass(frozen=True)
class TargetOptions:
    """Where a trained bundle goes: its directory and MLflow."""

    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "orderlift"
    register: Annotated[str | None, typer.Option(help="Registered model name; 'none' to skip.")] = "orderlift"
    alias: Annotated[str, typer.Option(help="Alias given to the new version.")] = "candidate"
    out: Annotated[Path | None, typer.Option(help="Bundle directory (default bundles/<model>).")] = None
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
