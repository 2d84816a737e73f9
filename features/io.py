"""Read shop exports (CSV, gzip'd CSV, Parquet) into raw string columns under canonical names."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from features.errors import MappingError, MissingColumnError, UnreadableFileError
from features.schema import EVENT_COLUMNS, ITEM_COLUMNS, REQUIRED_EVENT_COLUMNS, EventType

__all__ = [
    "ONLINE_RETAIL_NON_PRODUCTS",
    "PRESETS",
    "SourceFormat",
    "parse_mapping",
    "read_items",
    "read_table",
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
    present = {name: src for name, src in wanted.items() if src in header}
    for name in required:
        if name not in present:
            raise MissingColumnError(
                f"{path}: column {wanted.get(name, name)!r} (for {name}) is not in the file; "
                f"columns are: {', '.join(header[:20])}"
            )
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
