"""Read a GA4 e-commerce export (BigQuery's events table as NDJSON or Parquet) into flat rows.

Each event's ``items`` array becomes one row per item; an event without items (``page_view``,
``session_start``, ...) stays one row with no item, so that every event in the file is counted
(``GA4_FILE_ROWS`` in the table's metadata holds how many there were). The user is ``user_id``
where the site set one, else ``user_pseudo_id``; the order is ``ecommerce.transaction_id``;
``event_timestamp`` is microseconds since the epoch, UTC.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from features.errors import MissingColumnError, UnreadableFileError

__all__ = ["GA4_EVENT_TYPES", "GA4_FILE_ROWS", "read_ga4"]

logger = logging.getLogger(__name__)

#: GA4's recommended e-commerce events and the event type each becomes; the rest are rejected.
GA4_EVENT_TYPES: dict[str, str] = {
    "view_item": "view",
    "select_item": "view",
    "add_to_cart": "cart",
    "purchase": "purchase",
}
#: Metadata key of the table ``read_ga4`` returns: how many events the file held.
GA4_FILE_ROWS = b"orderlift.file_rows"


_INT = pa.int64()


def _schema(stamp: pa.DataType = _INT, quantity: pa.DataType = _INT) -> pa.Schema:
    """Return the fields read from an export, its integers typed as given."""
    item = pa.struct(
        [pa.field(name, pa.string()) for name in ("item_id", "item_name", "item_category")]
        + [pa.field("quantity", quantity), pa.field("price", pa.float64())]
    )
    return pa.schema(
        [
            ("event_name", pa.string()),
            ("event_timestamp", stamp),
            ("user_id", pa.string()),
            ("user_pseudo_id", pa.string()),
            ("ecommerce", pa.struct([("transaction_id", pa.string())])),
            ("items", pa.list_(item)),
        ]
    )


def _read_ndjson(path: Path) -> pa.Table:
    """Read NDJSON whose integers are JSON numbers or, as BigQuery may write them, strings."""
    errors = []
    kinds = (pa.int64(), pa.string())
    for stamp, quantity in ((s, q) for s in kinds for q in kinds):
        schema = _schema(stamp, quantity)
        options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        try:
            return pa_json.read_json(path, parse_options=options)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            errors.append(str(exc).splitlines()[0])
    raise UnreadableFileError(f"{path}: not a GA4 NDJSON export ({errors[-1]})")


def _read(path: Path) -> pa.Table:
    """Read the export's columns from Parquet or NDJSON."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        names = pq.read_schema(path).names
        return pq.read_table(path, columns=[c for c in _schema().names if c in names])
    return _read_ndjson(path)


def _column(table: pa.Table, name: str) -> pa.Array:
    """Return a column as one array, all null when the file lacks it."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return table.column(name).combine_chunks()


def _field(values: pa.Array, name: str) -> pa.Array:
    """Return a struct array's field, all null when the struct lacks it."""
    if pa.types.is_struct(values.type) and values.type.get_field_index(name) >= 0:
        return pc.struct_field(values, name)
    return pa.nulls(len(values), pa.string())


def _as_text(values: pa.Array) -> pa.DictionaryArray:
    """Return values as dictionary-encoded strings (the raw form validation reads)."""
    text = values if pa.types.is_string(values.type) else pc.cast(values, pa.string())
    return pc.dictionary_encode(text)


def read_ga4(path: Path) -> pa.Table:
    """Return one row per (event, item), and one per event without items, under canonical names."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    try:
        table = _read(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableFileError(f"{path}: cannot be read as a GA4 export ({exc})") from exc
    for name in ("event_name", "event_timestamp", "items"):
        if name not in table.column_names:
            raise MissingColumnError(f"{path}: GA4 column {name!r} is not in the file")
    items = _column(table, "items")
    lengths = pc.fill_null(pc.list_value_length(items), 0).to_numpy(zero_copy_only=False)
    parents = pc.list_parent_indices(items).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(items)
    bare = np.flatnonzero(lengths == 0)
    event_row = np.concatenate([parents, bare])
    order = np.argsort(event_row, kind="stable")
    event_row = event_row[order]
    item_pos = np.concatenate([np.arange(len(parents)), np.full(len(bare), -1)])[order]
    take_event = pa.array(event_row)
    take_item = pa.array(item_pos, mask=item_pos < 0)
    user = pc.coalesce(_column(table, "user_id"), _column(table, "user_pseudo_id"))
    transaction = _field(_column(table, "ecommerce"), "transaction_id")
    columns: dict[str, pa.Array] = {
        "user_id": user.take(take_event),
        "item_id": _field(flat, "item_id").take(take_item),
        "timestamp": _column(table, "event_timestamp").take(take_event),
        "event_type": _column(table, "event_name").take(take_event),
        "order_id": transaction.take(take_event),
        "quantity": _field(flat, "quantity").take(take_item),
        "price": _field(flat, "price").take(take_item),
        "item_name": _field(flat, "item_name").take(take_item),
        "category": _field(flat, "item_category").take(take_item),
    }
    out = pa.table({name: _as_text(values) for name, values in columns.items()})
    logger.info("read %d GA4 events from %s as %d rows", table.num_rows, path, out.num_rows)
    return out.replace_schema_metadata({GA4_FILE_ROWS: str(table.num_rows).encode()})
