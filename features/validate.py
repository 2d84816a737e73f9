"""Accept, set aside as anonymous, or reject every row with one reason; net returns; build frames.

The contract: ``rows_read == rows_accepted + rows_anonymous + sum(rejected.values())``. A row
without a user id that is a clean purchase line of an order (an order id, not a return, passing
every later check) is kept apart as anonymous (``ValidationResult.anonymous``): no per-user model
can use it, but basket statistics can. Every other row without a user id (views, carts, lines
without an order id, cancellations, lines failing a later check) is rejected as ``missing_user``.
Rejected rows keep their raw values, their 1-based row number and their reason, for the
quarantine file. Returns (cancellation orders, negative purchase quantities) are rejected as
``return`` and their quantity is netted against the same user's purchases of the same item,
latest purchase first; what cannot be matched is counted, never silently lost. Anonymous lines
are never netted. Lines of an order the shop cancelled or refunded in full (its ``order_status``
is one of the format's ``cancelled_statuses``, or it has a ``cancelled_at``) are rejected as
``cancelled``. Before any check, order fields given only on an order's first line are carried to
its other lines, and hashed columns (an e-mail as user id) are hashed (``features.identity``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from features.columns import EncodedColumn, encode, parse_float, parse_timestamp
from features.errors import MissingColumnError
from features.ga4 import GA4_FILE_ROWS, read_ga4
from features.identity import hash_column
from features.io import SourceFormat, fill_order_fields, read_table
from features.schema import EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS, EventType, Reason

__all__ = [
    "ReturnsReport",
    "ValidationReport",
    "ValidationResult",
    "hash_columns",
    "load_events",
    "require_event_type",
    "validate",
]

logger = logging.getLogger(__name__)

_REASONS: tuple[Reason, ...] = tuple(Reason)
_EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
_PURCHASE = _EVENT_TYPES.index(EventType.PURCHASE.value)


@dataclass(frozen=True)
class ReturnsReport:
    """How returns were netted against purchases."""

    rows: int = 0
    quantity: float = 0.0
    matched_quantity: float = 0.0
    unmatched_quantity: float = 0.0
    unmatched_rows: int = 0
    purchases_netted_out: int = 0


@dataclass(frozen=True)
class ValidationReport:
    """Counts that reconcile every row read."""

    rows_read: int
    rows_accepted: int
    rejected: dict[str, int]
    returns: ReturnsReport = field(default_factory=ReturnsReport)
    rows_anonymous: int = 0
    #: Records in the file when they differ from rows (a GA4 event becomes one row per item).
    file_rows: int | None = None

    def __add__(self, other: ValidationReport) -> ValidationReport:
        """Return the report of two parts' rows together (each row validated in one part)."""
        returns = {
            f.name: getattr(self.returns, f.name) + getattr(other.returns, f.name)
            for f in fields(ReturnsReport)
        }
        return ValidationReport(
            rows_read=self.rows_read + other.rows_read,
            rows_accepted=self.rows_accepted + other.rows_accepted,
            rejected={
                k: self.rejected.get(k, 0) + other.rejected.get(k, 0)
                for k in {**self.rejected, **other.rejected}
            },
            returns=ReturnsReport(**returns),
            rows_anonymous=self.rows_anonymous + other.rows_anonymous,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        """Return the report ``to_dict`` gave."""
        names = {f.name for f in fields(cls)} - {"returns"}
        return cls(**{k: v for k, v in data.items() if k in names}, returns=ReturnsReport(**data["returns"]))

    @property
    def reconciled(self) -> bool:
        """Return whether every row is accepted, kept as anonymous, or rejected with one reason."""
        return self.rows_read == self.rows_accepted + self.rows_anonymous + sum(self.rejected.values())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**asdict(self), "reconciled": self.reconciled}


@dataclass(frozen=True)
class ValidationResult:
    """The accepted events, the rejected raw rows, the report, and the anonymous purchase lines."""

    events: pd.DataFrame
    rejected: pa.Table
    report: ValidationReport
    #: Purchase lines of orders without a user id, with the events' columns and dtypes.
    anonymous: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The 0-based rows of the table that ``events`` and ``anonymous`` hold, in their order.
    event_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    anonymous_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def write_quarantine(self, path: Path) -> Path:
        """Write the rejected rows with their reasons to a CSV file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pa_csv.write_csv(self.rejected, path)
        return path


def load_events(path: Path, fmt: SourceFormat, quarantine: Path | None = None) -> ValidationResult:
    """Read, validate and net an events file; optionally write its quarantine."""
    wanted = {name: fmt.source_column(name) for name in EVENT_COLUMNS}
    if fmt.layout == "ga4":
        table = read_ga4(Path(path))
    else:
        table = read_table(Path(path), wanted, required=(*REQUIRED_EVENT_COLUMNS, *fmt.mapped))
    require_event_type(path, table.column_names, fmt)
    result = validate(hash_columns(fill_order_fields(table, fmt.order_fields), fmt), fmt)
    file_rows = (table.schema.metadata or {}).get(GA4_FILE_ROWS)
    if file_rows is not None:
        result = replace(result, report=replace(result.report, file_rows=int(file_rows)))
    if quarantine is not None:
        result.write_quarantine(quarantine)
    return result


def hash_columns(table: pa.Table, fmt: SourceFormat) -> pa.Table:
    """Return the table with the format's hashed columns (an e-mail as user id) hashed."""
    for name in (c for c in fmt.hashed_columns if c in table.column_names):
        table = table.set_column(
            table.column_names.index(name), name, hash_column(table.column(name), fmt.id_salt)
        )
    return table


def require_event_type(path: Path | str, columns: list[str], fmt: SourceFormat) -> None:
    """Raise MissingColumnError when rows have no event type column and no constant type is given."""
    if "event_type" not in columns and fmt.event_type is None:
        raise MissingColumnError(
            f"{path}: no event type column {fmt.source_column('event_type')!r}; map one with "
            "--map event_type=COLUMN or give every row one type with --event-type purchase"
        )


def validate(table: pa.Table, fmt: SourceFormat) -> ValidationResult:
    """Validate canonical raw columns (see ``read_table``) into an events frame."""
    n = table.num_rows

    def raw(name: str) -> pa.ChunkedArray | None:
        return table.column(name) if name in table.column_names else None

    def col(name: str) -> EncodedColumn:
        return encode(raw(name), n, float_ids=name in fmt.float_id_columns)

    user, item, order = col("user_id"), col("item_id"), col("order_id")
    ts = parse_timestamp(raw("timestamp"), n, fmt.timestamp_format, fmt.timezone)
    event = _event_codes(col("event_type"), fmt, n)
    qty, qty_unparsed = parse_float(raw("quantity"), n)
    price, price_unparsed = parse_float(raw("price"), n)
    if fmt.price_per_line:
        price = np.divide(price, qty, out=np.full(n, np.nan), where=qty > 0)

    is_return = _matches(order, f"{re.escape(fmt.cancel_prefix)}.*" if fmt.cancel_prefix else None)
    is_return |= (event == _PURCHASE) & (qty < 0)
    cancelled = col("cancelled_at").present
    if fmt.cancelled_statuses:
        statuses = "|".join(re.escape(s.lower()) for s in fmt.cancelled_statuses)
        cancelled |= _matches(col("order_status"), f"(?i:{statuses})")
    checks: list[tuple[Reason, np.ndarray]] = [
        (Reason.UNKNOWN_EVENT_TYPE, event < 0),
        (Reason.MISSING_ITEM, ~item.present),
        (Reason.BAD_TIMESTAMP, ts == np.iinfo(np.int64).min),
        (
            Reason.NON_PRODUCT_ITEM,
            _matches(item, "|".join(f"(?:{p})" for p in fmt.non_product_patterns) or None),
        ),
        (Reason.RETURN, is_return),
        (Reason.CANCELLED, cancelled),
        (Reason.BAD_QUANTITY, qty_unparsed | (qty <= 0)),
        (Reason.BAD_PRICE, price_unparsed | (price <= 0)),
    ]
    reason = np.full(n, -1, dtype=np.int8)
    for code, mask in ((_REASONS.index(r), m) for r, m in checks):
        reason[(reason < 0) & mask] = code
    keepable = user.present | (order.present & (event == _PURCHASE))
    candidate = np.flatnonzero((reason < 0) & keepable)
    columns = (user.codes, item.codes, event, ts, order.codes, qty, price)
    reason[candidate[_duplicated([c[candidate] for c in columns])]] = _REASONS.index(Reason.DUPLICATE)
    anonymous = ~user.present & keepable & (reason < 0)
    reason[~user.present & ~anonymous] = _REASONS.index(Reason.MISSING_USER)

    accepted = (reason < 0) & ~anonymous
    quantity = np.where(np.isnan(qty), 1.0, qty)
    returned = reason == _REASONS.index(Reason.RETURN)
    quantity, returns = _net_returns(
        user.codes, item.codes, ts, np.abs(quantity), accepted & (event == _PURCHASE), returned
    )
    events = _frame(table, accepted, user, item, event, ts, order, quantity, price, n)
    anonymous_events = _frame(table, anonymous, user, item, event, ts, order, quantity, price, n)
    report = _report(reason, accepted, anonymous, returns)
    return ValidationResult(
        events,
        _rejected_rows(table, reason),
        report,
        anonymous_events,
        np.flatnonzero(accepted),
        np.flatnonzero(anonymous),
    )


def _report(
    reason: np.ndarray, accepted: np.ndarray, anonymous: np.ndarray, returns: ReturnsReport
) -> ValidationReport:
    """Count the rows read, accepted, anonymous and rejected by reason, and log the outcome."""
    counts = np.bincount(reason[reason >= 0].astype(np.int64), minlength=len(_REASONS))
    report = ValidationReport(
        rows_read=len(reason),
        rows_accepted=int(accepted.sum()),
        rejected={r.value: int(c) for r, c in zip(_REASONS, counts, strict=True)},
        returns=returns,
        rows_anonymous=int(anonymous.sum()),
    )
    logger.info(
        "validated %d rows: %d accepted, %d anonymous purchase lines",
        report.rows_read,
        report.rows_accepted,
        report.rows_anonymous,
    )
    return report


def _duplicated(columns: list[np.ndarray]) -> np.ndarray:
    """Return a mask of rows that repeat an earlier row exactly (hash first, then compare)."""
    if not len(columns[0]):
        return np.zeros(0, dtype=bool)
    digest = np.zeros(len(columns[0]), dtype=np.uint64)
    for number, column in enumerate(columns):
        bits = np.ascontiguousarray(column, dtype=np.float64 if column.dtype.kind == "f" else np.int64)
        mixed = bits.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15 + 2 * number + 1)
        digest ^= mixed + np.uint64(0x632BE59BD9B4E019) + (digest << np.uint64(6)) + (digest >> np.uint64(2))
    shared = np.flatnonzero(pd.Series(digest).duplicated(keep=False).to_numpy())
    out = np.zeros(len(digest), dtype=bool)
    if len(shared):
        exact = pd.DataFrame({str(k): c[shared] for k, c in enumerate(columns)}).duplicated().to_numpy()
        out[shared[exact]] = True
    return out


def _event_codes(column: EncodedColumn, fmt: SourceFormat, n: int) -> np.ndarray:
    """Return the event type code per row (-1 unknown), from a constant or the mapped column."""
    if not column.present.any() and fmt.event_type is not None:
        return np.full(n, _EVENT_TYPES.index(fmt.event_type), dtype=np.int8)
    lookup = {v.lower(): v for v in _EVENT_TYPES}
    lookup.update({k.strip().lower(): v for k, v in fmt.event_type_values.items()})
    names = [lookup.get(str(v).strip().lower()) for v in column.values]
    per_value = np.array([_EVENT_TYPES.index(v) if v else -1 for v in names] + [-1], dtype=np.int8)
    if fmt.event_type is not None:  # a constant fills rows without a type
        per_value[-1] = _EVENT_TYPES.index(fmt.event_type)
    return per_value[column.codes]


def _matches(column: EncodedColumn, pattern: str | None) -> np.ndarray:
    """Return a row mask: the value fully matches ``pattern``."""
    if pattern is None or not len(column.values):
        return np.zeros(len(column.codes), dtype=bool)
    hit = pd.Series(column.values, dtype=object).str.fullmatch(pattern).to_numpy(dtype=bool)
    return np.append(hit, False)[column.codes]


def _net_returns(
    user: np.ndarray,
    item: np.ndarray,
    ts: np.ndarray,
    quantity: np.ndarray,
    purchase: np.ndarray,
    returned: np.ndarray,
) -> tuple[np.ndarray, ReturnsReport]:
    """Subtract returned quantities from the same user's purchases of the item, latest first."""
    quantity = quantity.astype(np.float64, copy=True)
    if not returned.any():
        return quantity, ReturnsReport()
    n_items = int(item.max()) + 1
    pair = user.astype(np.int64) * n_items + item
    ret_pairs, ret_inverse = np.unique(pair[returned], return_inverse=True)
    ret_qty = np.bincount(ret_inverse, weights=quantity[returned])
    rows = np.flatnonzero(purchase & np.isin(pair, ret_pairs))
    rows = rows[np.lexsort((-ts[rows], pair[rows]))]
    if not len(rows):
        return quantity, ReturnsReport(
            rows=int(returned.sum()),
            quantity=float(ret_qty.sum()),
            unmatched_quantity=float(ret_qty.sum()),
            unmatched_rows=int(returned.sum()),
        )
    p, q = pair[rows], quantity[rows]
    cum = np.cumsum(q)
    start = np.r_[0, np.flatnonzero(p[1:] != p[:-1]) + 1]
    group_size = np.diff(np.r_[start, len(p)])
    before = cum - q - np.repeat(cum[start] - q[start], group_size)
    owed = ret_qty[np.searchsorted(ret_pairs, p)]
    taken = np.clip(owed - before, 0.0, q)
    quantity[rows] = q - taken
    bought = np.bincount(np.searchsorted(ret_pairs, p), weights=q, minlength=len(ret_pairs))
    matched = np.minimum(ret_qty, bought)
    return quantity, ReturnsReport(
        rows=int(returned.sum()),
        quantity=float(ret_qty.sum()),
        matched_quantity=float(matched.sum()),
        unmatched_quantity=float((ret_qty - matched).sum()),
        unmatched_rows=int(np.isin(pair[returned], ret_pairs[bought == 0]).sum()),
        purchases_netted_out=int(((q - taken) == 0).sum()),
    )


def _frame(
    table: pa.Table,
    accepted: np.ndarray,
    user: EncodedColumn,
    item: EncodedColumn,
    event: np.ndarray,
    ts: np.ndarray,
    order: EncodedColumn,
    quantity: np.ndarray,
    price: np.ndarray,
    n: int,
) -> pd.DataFrame:
    """Build the events frame of accepted rows with categorical ids."""

    def cat(column: EncodedColumn) -> pd.Categorical:
        """Return the accepted rows' values as a categorical of only the values they use."""
        codes = column.codes[accepted]
        used = np.bincount(codes[codes >= 0], minlength=len(column.values)) > 0
        renumber = np.append(np.cumsum(used) - 1, -1).astype(np.int32)
        categories = pd.Index(column.values[used].astype(object), dtype=object)
        return pd.Categorical.from_codes(renumber[codes], categories=categories, validate=False)

    frame = pd.DataFrame(
        {
            "user_id": cat(user),
            "item_id": cat(item),
            "event_type": pd.Categorical.from_codes(event[accepted], categories=pd.Index(list(_EVENT_TYPES))),
            "timestamp": pd.Series(ts[accepted].view("datetime64[ns]")).dt.tz_localize("UTC"),
            "order_id": cat(order),
            "quantity": quantity[accepted].astype(np.float32),
            "price": price[accepted],
        }
    )
    for name in ("item_name", "category"):
        if name in table.column_names:
            frame[name] = cat(encode(table.column(name), n))
    return frame


def _rejected_rows(table: pa.Table, reason: np.ndarray) -> pa.Table:
    """Return the raw rejected rows with their 1-based row number and reason."""
    rejected = reason >= 0
    rows = np.flatnonzero(rejected)
    picked = table.filter(pa.array(rejected))  # chunk by chunk: no dictionary unification
    columns = {name: picked.column(name).cast(pa.string()) for name in picked.column_names}
    reasons = np.array([r.value for r in _REASONS], dtype=object)[reason[rows]]
    return pa.table({"row": pa.array(rows + 1), **columns, "reason": pa.array(reasons, pa.string())})
