"""Turn raw string columns into codes and typed arrays by parsing each distinct value once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["EncodedColumn", "encode", "parse_float", "parse_timestamp", "timestamp_ns"]

_FLOAT_ID = r"^-?\d+\.0+$"
_OFFSET = r"(?:Z|[+-]\d\d:?\d\d)\s*$"


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


def parse_float(column: EncodedColumn) -> tuple[np.ndarray, np.ndarray]:
    """Return (values with NaN where missing or bad, mask of present-but-unparseable rows)."""
    parsed = pd.to_numeric(pd.Series(column.values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad_value = ~np.isfinite(parsed)
    parsed = np.append(parsed, np.nan)
    bad_value = np.append(bad_value, False)
    return parsed[column.codes], bad_value[column.codes]


def parse_timestamp(column: EncodedColumn, fmt: str | None = None, timezone: str = "UTC") -> np.ndarray:
    """Return UTC epoch nanoseconds per row (int64); INT64 min where missing or bad."""
    text = pd.Series(column.values, dtype=object)
    parsed = _to_datetime(text, fmt or "ISO8601", timezone)
    if fmt is None and parsed.isna().any():
        retry = parsed.isna()
        parsed[retry] = _to_datetime(text[retry], "mixed", timezone)
    nat = np.iinfo(np.int64).min
    ns = parsed.dt.as_unit("ns").astype("int64").to_numpy() if len(parsed) else np.array([], np.int64)
    ns = np.where(parsed.isna().to_numpy(), nat, ns)
    return np.append(ns, nat)[column.codes]


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
