"""Read shop exports (CSV, gzip'd CSV, Parquet) into raw string columns under canonical names."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from features.columns import encode
from features.errors import MappingError, MissingColumnError, UnreadableFileError
from features.ga4 import GA4_EVENT_TYPES
from features.schema import EVENT_COLUMNS, ITEM_COLUMNS, REQUIRED_EVENT_COLUMNS, EventType

__all__ = [
    "ONLINE_RETAIL_NON_PRODUCTS",
    "PRESETS",
    "SourceFormat",
    "fill_order_fields",
    "parse_mapping",
    "read_items",
    "read_table",
    "resolve_columns",
    "resolve_format",
]

logger = logging.getLogger(__name__)

#: Online Retail stock codes that are fees, postage or adjustments, not products (full match).
ONLINE_RETAIL_NON_PRODUCTS: tuple[str, ...] = (
    "POST",
    "DOT",
    "D",
    "M",
    "m",
    "S",
    "B",
    "C2",
    "CRUK",
    "PADS",
    "BANK CHARGES",
    "AMAZONFEE",
    "gift_0001_.*",
    "DCGS.*",
)

_STRING_DICT = pa.dictionary(pa.int32(), pa.string())


@dataclass(frozen=True)
class SourceFormat:
    """How a shop's export maps onto the event contract, and how to parse its values."""

    columns: Mapping[str, str] = field(default_factory=dict)
    event_type: str | None = None
    event_type_values: Mapping[str, str] = field(default_factory=dict)
    cancel_prefix: str | None = None
    non_product_patterns: tuple[str, ...] = ()
    timestamp_format: str | None = None
    timezone: str = "UTC"
    float_id_columns: tuple[str, ...] = ()
    #: Canonical columns the user mapped explicitly: these must exist (a preset's may be absent).
    mapped: tuple[str, ...] = ()
    #: The items catalog's columns: canonical name -> the file's (``cost=UnitCost``).
    item_columns: Mapping[str, str] = field(default_factory=dict)
    #: ``rows`` (one row per event or line) or ``ga4`` (events with ``items`` arrays; see features.ga4).
    layout: str = "rows"
    #: Canonical columns whose values are hashed on the way in (an e-mail as ``user_id``).
    hashed_columns: tuple[str, ...] = ()
    #: Canonical columns given only on an order's first line, carried to its other lines.
    order_fields: tuple[str, ...] = ()
    #: ``order_status`` values (case-insensitive) of orders cancelled or refunded in full.
    cancelled_statuses: tuple[str, ...] = ()
    #: The ``price`` column holds the line's total; the unit price is it over the quantity.
    price_per_line: bool = False
    #: The hashing salt (``ORDERLIFT_ID_SALT``); never printed.
    id_salt: str = field(default="", repr=False)

    def source_column(self, name: str) -> str:
        """Return the file's column for canonical column ``name``."""
        return self.columns.get(name, name)


PRESETS: dict[str, SourceFormat] = {
    "online-retail": SourceFormat(
        columns={
            "user_id": "CustomerID",
            "item_id": "StockCode",
            "timestamp": "InvoiceDate",
            "order_id": "InvoiceNo",
            "quantity": "Quantity",
            "price": "UnitPrice",
            "item_name": "Description",
        },
        event_type=EventType.PURCHASE.value,
        cancel_prefix="C",
        non_product_patterns=ONLINE_RETAIL_NON_PRODUCTS,
        float_id_columns=("user_id",),
    ),
    # Shopify admin > Orders > Export: one row per line item; order fields on the first line only.
    "shopify": SourceFormat(
        columns={
            "user_id": "Email",
            "item_id": "Lineitem sku",
            "timestamp": "Created at",
            "order_id": "Name",
            "quantity": "Lineitem quantity",
            "price": "Lineitem price",
            "item_name": "Lineitem name",
            "order_status": "Financial Status",
            "cancelled_at": "Cancelled at",
        },
        event_type=EventType.PURCHASE.value,
        timestamp_format="%Y-%m-%d %H:%M:%S %z",
        hashed_columns=("user_id",),
        order_fields=("user_id", "timestamp", "order_status", "cancelled_at"),
        cancelled_statuses=("refunded", "voided"),
    ),
    # WooCommerce Customer/Order/Coupon Export, "Default - One Row per Item" (naive local times).
    "woocommerce": SourceFormat(
        columns={
            "user_id": "billing_email",
            "item_id": "item_sku",
            "timestamp": "order_date",
            "order_id": "order_number",
            "quantity": "item_quantity",
            "price": "item_total",
            "item_name": "item_name",
            "order_status": "status",
        },
        event_type=EventType.PURCHASE.value,
        hashed_columns=("user_id",),
        order_fields=("user_id", "timestamp", "order_status"),
        cancelled_statuses=("cancelled", "refunded", "failed", "pending", "checkout-draft", "trash"),
        price_per_line=True,
    ),
    # GA4's BigQuery export (events_*), as NDJSON or Parquet: one row per event, items nested.
    "ga4": SourceFormat(
        event_type_values=GA4_EVENT_TYPES,
        timestamp_format="epoch_us",
        layout="ga4",
    ),
}


def parse_mapping(pairs: Sequence[str] | str | None) -> dict[str, str]:
    """Parse ``user_id=CustomerID,item_id=StockCode`` (or a list of such) into a dict."""
    if not pairs:
        return {}
    items = pairs.split(",") if isinstance(pairs, str) else [p for s in pairs for p in s.split(",")]
    mapping: dict[str, str] = {}
    for raw in items:
        if not raw.strip():
            continue
        name, sep, source = raw.partition("=")
        name, source = name.strip(), source.strip()
        if not sep or not name or not source:
            raise MappingError(f"mapping entry {raw!r} is not of the form column=SourceColumn")
        mapping[name] = source
    return mapping


def resolve_format(
    preset: str | None = None,
    mapping: Mapping[str, str] | None = None,
    event_type: str | None = None,
    event_type_values: Mapping[str, str] | None = None,
    item_mapping: Mapping[str, str] | None = None,
    **options: object,
) -> SourceFormat:
    """Combine a named preset with explicit mapping entries and options (explicit wins)."""
    if preset is not None and preset not in PRESETS:
        raise MappingError(f"unknown preset {preset!r}; known presets: {', '.join(sorted(PRESETS))}")
    base = PRESETS[preset] if preset else SourceFormat()
    for name in mapping or {}:
        if name not in EVENT_COLUMNS:
            raise MappingError(
                f"mapping names unknown column {name!r}; event columns are {', '.join(EVENT_COLUMNS)}"
            )
    for name in item_mapping or {}:
        if name not in ITEM_COLUMNS:
            raise MappingError(
                f"items mapping names unknown column {name!r}; catalog columns are {', '.join(ITEM_COLUMNS)}"
            )
    if event_type is not None and event_type not in {t.value for t in EventType}:
        raise MappingError(f"event type {event_type!r} is not one of view, cart, purchase")
    for target in (event_type_values or {}).values():
        if target not in {t.value for t in EventType}:
            raise MappingError(f"event type mapping targets {target!r}, not view, cart or purchase")
    given = {k: v for k, v in options.items() if v is not None}
    return replace(
        base,
        columns={**base.columns, **(mapping or {})},
        event_type=event_type if event_type is not None else base.event_type,
        event_type_values={**base.event_type_values, **(event_type_values or {})},
        mapped=tuple(mapping or {}),
        item_columns={**base.item_columns, **(item_mapping or {})},
        **given,  # type: ignore[arg-type]
    )


def fill_order_fields(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """Fill each blank in ``names`` with the value on the first line of the same order that has one."""
    if "order_id" not in table.column_names or not table.num_rows:
        return table
    n = table.num_rows
    order = encode(table.column("order_id"), n)
    for name in (c for c in names if c in table.column_names):
        column = encode(table.column(name), n)
        rows = np.flatnonzero(column.present & order.present)
        orders, first = np.unique(order.codes[rows], return_index=True)
        by_order = np.full(len(order.values), -1, dtype=np.int32)
        by_order[orders] = column.codes[rows[first]]
        codes = column.codes.copy()
        blank = ~column.present & order.present
        codes[blank] = by_order[order.codes[blank]]
        filled = pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=codes < 0), pa.array(column.values, pa.string())
        )
        table = table.set_column(table.column_names.index(name), name, filled)
    return table


def _header(path: Path) -> list[str]:
    """Return the column names of a CSV or Parquet file."""
    if _is_parquet(path):
        return list(pq.read_schema(path).names)
    reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 16))
    return list(reader.schema.names)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def read_table(
    path: Path, wanted: Mapping[str, str], required: Sequence[str] = REQUIRED_EVENT_COLUMNS
) -> pa.Table:
    """Read the ``wanted`` columns (canonical -> source) as dictionary-encoded strings."""
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    try:
        header = _header(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise UnreadableFileError(f"{path}: not a readable CSV or Parquet file ({_first_line(exc)})") from exc
    present = resolve_columns(path, header, wanted, required)
    try:
        if _is_parquet(path):
            raw = pq.read_table(path, columns=list(present.values()))
            table = pa.table({n: _as_string_dict(raw.column(s)) for n, s in present.items()})
        else:
            raw = pa_csv.read_csv(
                path,
                convert_options=pa_csv.ConvertOptions(
                    column_types={src: _STRING_DICT for src in present.values()},
                    include_columns=list(present.values()),
                    strings_can_be_null=True,
                ),
            )
            table = pa.table({n: raw.column(s) for n, s in present.items()})
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise UnreadableFileError(f"{path}: cannot be read ({_first_line(exc)})") from exc
    logger.info("read %d rows from %s", table.num_rows, path)
    return table


def resolve_columns(
    path: Path | str, header: Sequence[str], wanted: Mapping[str, str], required: Sequence[str]
) -> dict[str, str]:
    """Return the ``wanted`` columns (canonical -> source) in the header; raise if a required one is not."""
    present = {name: src for name, src in wanted.items() if src in header}
    for name in required:
        if name not in present:
            raise MissingColumnError(
                f"{path}: column {wanted.get(name, name)!r} (for {name}) is not in the file; "
                f"columns are: {', '.join(header[:20])}"
            )
    return present


def _as_string_dict(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cast any column to dictionary-encoded strings."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
    elif not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return pc.dictionary_encode(column)


def read_items(path: Path, mapping: Mapping[str, str] | None = None) -> pa.Table:
    """Read an items catalog (``item_id`` required; name, category, price, in_stock optional)."""
    wanted = {name: (mapping or {}).get(name, name) for name in ITEM_COLUMNS}
    return read_table(Path(path), wanted, required=("item_id",))


def _first_line(exc: BaseException) -> str:
    """Return the first line of an error, printable and short (binary input echoes garbage)."""
    lines = str(exc).strip().splitlines()
    text = "".join(ch for ch in (lines[0] if lines else "") if ch.isprintable() and ch.isascii())
    return (text[:120] + "...") if len(text) > 120 else (text or type(exc).__name__)
