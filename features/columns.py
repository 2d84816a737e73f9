"""Turn raw string columns into codes and typed arrays by parsing each distinct value once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["EPOCH_FORMATS", "EncodedColumn", "encode", "parse_float", "parse_timestamp", "timestamp_ns"]

_FLOAT_ID = r"^-?\d+\.0+$"
_OFFSET = r"(?:Z|[+-]\d\d:?\d\d)\s*$"
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
#: Naive layouts parsed in Arrow before the slower pandas fallback.
_FAST_LAYOUTS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
#: Timestamp formats that are integers since the epoch, and nanoseconds per unit.
EPOCH_FORMATS: dict[str, int] = {"epoch_s": 10**9, "epoch_ms": 10**6, "epoch_us": 10**3, "epoch_ns": 1}


@dataclass(frozen=True)
class EncodedColumn:
    """A string column as ``codes`` (int32, -1 where missing) into sorted unique ``values``."""

    codes: np.ndarray
    values: np.ndarray

    @property
    def present(self) -> np.ndarray:
        """Return a mask of rows with a value."""
        return self.codes >= 0


def encode(column: pa.ChunkedArray | None, n_rows: int, float_ids: bool = False) -> EncodedColumn:
    """Dictionary-encode a column, trimming blanks; blank and null become missing (-1)."""
    if column is None:
        return EncodedColumn(np.full(n_rows, -1, dtype=np.int32), np.array([], dtype=str))
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    indices = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    words = pd.Series(arr.dictionary.to_numpy(zero_copy_only=False), dtype=object).str.strip()
    if float_ids:
        words = words.where(
            ~words.str.match(_FLOAT_ID, na=False), words.str.replace(r"\.0+$", "", regex=True)
        )
    known = words.notna().to_numpy() & (words.str.len().fillna(0).to_numpy() > 0)
    values, inverse = np.unique(words[known].to_numpy(dtype=str), return_inverse=True)
    remap = np.full(len(words) + 1, -1, dtype=np.int32)
    remap[:-1][known] = inverse
    return EncodedColumn(remap[indices], values)  # index -1 hits the trailing -1


def _chunks(column: pa.ChunkedArray | None, n_rows: int) -> list[pa.DictionaryArray]:
    """Return the column's chunks as dictionary arrays (each with its own small dictionary)."""
    if column is None:
        return [pc.dictionary_encode(pa.nulls(n_rows, pa.string()))]
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return [c if pa.types.is_dictionary(c.type) else pc.dictionary_encode(c) for c in chunks] or [
        pc.dictionary_encode(pa.array([], pa.string()))
    ]


def _per_chunk(
    column: pa.ChunkedArray | None, n_rows: int, parse: Callable[[pa.Array], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Parse each chunk's distinct values once and spread them over its rows.

    ``parse`` maps stripped, non-empty distinct strings to (values, bad mask); missing rows get the
    value's missing marker (NaN, or INT64 min for int64) and are not bad.
    """
    values_out, bad_out = [], []
    for chunk in _chunks(column, n_rows):
        words = pc.utf8_trim_whitespace(chunk.dictionary)
        present = pc.fill_null(pc.greater(pc.utf8_length(words), 0), False).to_numpy(zero_copy_only=False)
        values, bad = parse(words.filter(pa.array(present)))
        missing = np.iinfo(np.int64).min if values.dtype == np.int64 else np.nan
        full = np.full(len(words) + 1, missing, dtype=values.dtype)
        full_bad = np.zeros(len(words) + 1, dtype=bool)
        full[:-1][present], full_bad[:-1][present] = values, bad
        indices = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        values_out.append(full[indices])
        bad_out.append(full_bad[indices])
    return np.concatenate(values_out), np.concatenate(bad_out)


def parse_float(column: pa.ChunkedArray | None, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (values with NaN where missing or bad, mask of present-but-unparseable rows)."""

    def parse(words: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        ok = pc.match_substring_regex(words, _NUMBER)
        parsed = pc.cast(pc.if_else(ok, words, pa.scalar(None, pa.string())), pa.float64())
        values = parsed.fill_null(np.nan).to_numpy(zero_copy_only=False)
        bad = ~np.isfinite(values)
        return np.where(bad, np.nan, values), bad

    return _per_chunk(column, n_rows, parse)


def parse_timestamp(
    column: pa.ChunkedArray | None, n_rows: int, fmt: str | None = None, timezone: str = "UTC"
) -> np.ndarray:
    """Return UTC epoch nanoseconds per row (int64); INT64 min where missing or unparseable.

    Common layouts parse in Arrow; anything else falls back to pandas (ISO 8601, then guessed).
    ``fmt`` may also be one of ``EPOCH_FORMATS``: whole seconds, ms, us or ns since the epoch, UTC.
    """
    nat = np.iinfo(np.int64).min
    if fmt in EPOCH_FORMATS:
        return _per_chunk(column, n_rows, lambda words: _parse_epoch(words, EPOCH_FORMATS[fmt]))[0]

    def parse(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        ns = np.full(len(text), nat, dtype=np.int64)
        for layout in [fmt] if fmt else list(_FAST_LAYOUTS):
            parsed = pc.strptime(text, format=layout, unit="ns", error_is_null=True)
            got = parsed.cast(pa.int64()).fill_null(nat).to_numpy(zero_copy_only=False)
            ns = np.where(ns == nat, got, ns)
        if timezone != "UTC":
            ns = _localize(ns, timezone)
        left = ns == nat
        if left.any():
            words = pd.Series(text.filter(pa.array(left)).to_numpy(zero_copy_only=False), dtype=object)
            slow = _to_datetime(words, fmt or "ISO8601", timezone)
            if fmt is None and slow.isna().any():
                retry = slow.isna()
                slow[retry] = _to_datetime(words[retry], "mixed", timezone)
            ns[left] = np.where(slow.isna().to_numpy(), nat, slow.dt.as_unit("ns").astype("int64").to_numpy())
        return ns, ns == nat

    values, _ = _per_chunk(column, n_rows, parse)
    return values


def _parse_epoch(words: pa.Array, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse whole numbers since the epoch into nanoseconds; anything else is bad."""
    nat = np.iinfo(np.int64).min
    ok = pc.match_substring_regex(words, r"^\d{1,18}$")
    parsed = pc.cast(pc.if_else(ok, words, pa.scalar(None, pa.string())), pa.int64())
    values = parsed.fill_null(nat).to_numpy(zero_copy_only=False)
    bad = (values == nat) | (values > np.iinfo(np.int64).max // scale)
    return np.where(bad, nat, values * scale), bad


def _localize(ns: np.ndarray, timezone: str) -> np.ndarray:
    """Read naive epoch nanoseconds as wall time in ``timezone``; return UTC nanoseconds."""
    nat = np.iinfo(np.int64).min
    ok = ns != nat
    local = pd.DatetimeIndex(ns[ok].view("datetime64[ns]")).tz_localize(
        timezone, ambiguous=np.zeros(int(ok.sum()), dtype=bool), nonexistent="shift_forward"
    )
    out = ns.copy()
    out[ok] = local.tz_convert("UTC").tz_localize(None).asi8
    return out


def _to_datetime(text: pd.Series, fmt: str, timezone: str) -> pd.Series:
    """Parse strings; naive times are taken in ``timezone``, the result is UTC."""
    if timezone == "UTC":
        return pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
    has_offset = text.astype(str).str.contains(_OFFSET, regex=True).to_numpy()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if has_offset.any():
        out[has_offset] = pd.to_datetime(text[has_offset], format=fmt, utc=True, errors="coerce")
    naive = ~has_offset
    if naive.any():
        local = pd.to_datetime(text[naive], format=fmt, errors="coerce")
        localized = local.dt.tz_localize(
            timezone, ambiguous=np.zeros(int(naive.sum()), dtype=bool), nonexistent="shift_forward"
        )
        out[naive] = localized.dt.tz_convert("UTC")
    return out


def timestamp_ns(timestamps: pd.Series) -> np.ndarray:
    """Return a UTC timestamp column as int64 nanoseconds since the epoch."""
    naive = timestamps.dt.tz_convert(None) if timestamps.dt.tz is not None else timestamps
    return naive.to_numpy(dtype="datetime64[ns]").astype(np.int64)
