"""Command-line options shared by the commands that read a shop's events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    "TimestampFormat",
    "Timezone",
    "source_format",
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
