"""Validation in Spark: the local engine's rules, reason codes and counts, run per partition.

Spark reads every column as text and numbers the rows (1-based, as the quarantine file does),
carries order fields to an order's other lines, then partitions the rows so that each rule that
spans rows (exact duplicates; returns netted against the same user's purchases) sees every row it
needs: by user, else by order, else by row. Each partition runs ``features.validate.validate``
itself, so the codes, their order and the netting are the local engine's by construction, and the
partitions' reports add up to the file's. CSV text that pyarrow reads as null (``NA``, ``NULL``,
...) is null here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from features.columns import timestamp_ns
from features.errors import UnreadableFileError
from features.io import SourceFormat, resolve_columns
from features.schema import EVENT_COLUMNS, REQUIRED_EVENT_COLUMNS, EventType, Reason
from features.validate import ValidationReport, hash_columns, require_event_type, validate
from training.errors import OptionError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "EVENT_SCHEMA",
    "SparkValidation",
    "check_source",
    "event_frame",
    "in_file_order",
    "plain",
    "read_events",
    "validate_events",
]

#: The validated events' columns in Spark (``timestamp``: UTC nanoseconds; ``row``: the file's row).
EVENT_SCHEMA = (
    "row long, user_id string, item_id string, event_type string, timestamp long, order_id string, "
    "quantity double, price double, item_name string, category string"
)
_EVENT_NAMES = [part.split()[0] for part in EVENT_SCHEMA.split(", ")]
_EVENT_TYPES = [t.value for t in EventType]
_CSV_NULLS = frozenset(pa_csv.ConvertOptions().null_values)
_PARQUET = {".parquet", ".pq"}
_URI = r"^[A-Za-z][\w+.-]*://"


@dataclass(frozen=True)
class SparkValidation:
    """Accepted events, anonymous purchase lines and rejected rows as Spark frames, and the report."""

    events: DataFrame
    anonymous: DataFrame
    rejected: DataFrame  # row, the raw columns, reason
    report: ValidationReport
    columns: tuple[str, ...]  # the canonical columns the file has

    def rejected_table(self) -> pa.Table:
        """Return the rejected rows in row order, as the local quarantine file has them."""
        frame = self.rejected.orderBy("row").toPandas()
        return pa.table(
            {
                "row": pa.array(frame["row"].to_numpy(np.int64)),
                **{c: _text(frame[f"raw_{c}"]) for c in self.columns},
                "reason": _text(frame["reason"]),
            }
        )


def check_source(source: str | Path, fmt: SourceFormat) -> str:
    """Return the events' location; raise when Spark cannot take the layout or a local path is missing."""
    if fmt.layout != "rows":
        raise OptionError(
            f"--engine spark reads CSV and Parquet rows; a {fmt.layout} export trains with --engine local"
        )
    path = str(source)
    if not re.match(_URI, path) and not Path(path).exists():
        raise UnreadableFileError(f"{path}: no such file or directory")
    return path


def read_events(spark: SparkSession, source: str | Path, fmt: SourceFormat) -> DataFrame:
    """Read a CSV or Parquet file, a directory of them or a URI, as text columns with their row number.

    A local path must exist; a URI (``s3a://``, ``hdfs://``, ...) goes to Spark as given and is
    Parquet when its name ends in ``.parquet`` or ``.pq``.
    """
    path = check_source(source, fmt)
    if re.match(_URI, path):
        parquet = PurePosixPath(path.rstrip("/")).suffix.lower() in _PARQUET
    else:
        local = Path(path)
        parquet = local.suffix.lower() in _PARQUET or any(local.glob("*.parquet"))
    try:
        if parquet:
            raw = spark.read.parquet(path)
        else:
            raw = spark.read.options(header=True, escape='"', inferSchema=False).csv(path)
    except Exception as exc:  # Spark's AnalysisException and Hadoop's IO errors alike
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UnreadableFileError(f"{path}: Spark cannot read it ({first})") from exc
    wanted = {name: fmt.source_column(name) for name in EVENT_COLUMNS}
    present = resolve_columns(path, raw.columns, wanted, (*REQUIRED_EVENT_COLUMNS, *fmt.mapped))
    require_event_type(path, list(present), fmt)
    from pyspark.sql import functions as sf

    frame = raw.select([sf.col(f"`{src}`").cast("string").alias(name) for name, src in present.items()])
    if not parquet:
        frame = frame.select(
            [sf.when(sf.col(c).isin(*_CSV_NULLS), None).otherwise(sf.col(c)).alias(c) for c in frame.columns]
        )
    return _numbered(frame)


def _numbered(frame: DataFrame) -> DataFrame:
    """Add ``row``: 1-based and contiguous in file order (partition by partition)."""
    from pyspark.sql import functions as sf

    frame = frame.withColumn("_mid", sf.monotonically_increasing_id())
    frame = frame.withColumn("_part", sf.shiftright("_mid", 33))
    counts = frame.groupBy("_part").count().orderBy("_part").toPandas()
    offsets = pd.DataFrame(
        {
            "_part": counts["_part"].astype(np.int64),
            "_offset": (counts["count"].cumsum() - counts["count"]).astype(np.int64),
        }
    )
    table = frame.sparkSession.createDataFrame(offsets, "_part long, _offset long")
    frame = frame.join(sf.broadcast(table), "_part")
    row = sf.col("_offset") + sf.col("_mid") - sf.shiftleft("_part", 33) + sf.lit(1)
    return frame.withColumn("row", row).drop("_mid", "_part", "_offset")


def _fill_order_fields(frame: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """Fill each blank order field from the first line of its order that has one (``fill_order_fields``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as sf

    if "order_id" not in frame.columns:
        return frame
    order = sf.trim(sf.col("order_id"))
    whole = (
        Window.partitionBy(order)
        .orderBy("row")
        .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    for name in (n for n in names if n in frame.columns):
        given = sf.col(name).isNotNull() & (sf.length(sf.trim(sf.col(name))) > 0)
        first = sf.first(sf.when(given, sf.col(name)), ignorenulls=True).over(whole)
        has_order = sf.col("order_id").isNotNull() & (sf.length(order) > 0)
        frame = frame.withColumn(name, sf.when(~given & has_order, first).otherwise(sf.col(name)))
    return frame


def _key(frame: DataFrame, fmt: SourceFormat) -> Any:
    """Return the partition key: the user (as ``encode`` normalises it), else the order, else the row."""
    from pyspark.sql import functions as sf

    user = sf.trim(sf.col("user_id"))
    if "user_id" in fmt.hashed_columns:
        user = sf.lower(user)
    if "user_id" in fmt.float_id_columns:
        user = sf.regexp_replace(user, r"^(-?\d+)\.0+$", "$1")
    order = sf.trim(sf.col("order_id")) if "order_id" in frame.columns else sf.lit(None)
    return (
        sf.when(sf.length(user) > 0, sf.concat(sf.lit("u:"), user))
        .when(sf.length(order) > 0, sf.concat(sf.lit("o:"), order))
        .otherwise(sf.concat(sf.lit("r:"), sf.col("row").cast("string")))
    )


def validate_events(frame: DataFrame, fmt: SourceFormat, partitions: int) -> SparkValidation:
    """Validate numbered text rows partition by partition; the result's frames are cached."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as sf

    columns = tuple(c for c in frame.columns if c != "row")
    if fmt.order_fields:
        frame = _fill_order_fields(frame, fmt.order_fields)
    schema = f"kind string, {EVENT_SCHEMA}, reason string, report string, " + ", ".join(
        f"raw_{c} string" for c in columns
    )
    types = dict(part.split() for part in schema.split(", "))
    out = frame.repartition(partitions, _key(frame, fmt)).mapInPandas(_validator(fmt, columns, types), schema)
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    parts = out.where(sf.col("kind") == "report").select("report").collect()
    empty = ValidationReport(0, 0, {reason.value: 0 for reason in Reason})
    report = sum((ValidationReport.from_dict(json.loads(r[0])) for r in parts), empty)
    kind = sf.col("kind")
    return SparkValidation(
        events=out.where(kind == "event").select(*_EVENT_NAMES),
        anonymous=out.where(kind == "anonymous").select(*_EVENT_NAMES),
        rejected=out.where(kind == "rejected").select("row", *(f"raw_{c}" for c in columns), "reason"),
        report=report,
        columns=columns,
    )


def _validator(
    fmt: SourceFormat, columns: tuple[str, ...], types: dict[str, str]
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Return the per-partition function: ``validate`` on the partition's rows in file order."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = in_file_order(batches)
        if frame is None:
            return
        rows = frame["row"].to_numpy(np.int64)
        result = validate(hash_columns(pa.table({c: _text(frame[c]) for c in columns}), fmt), fmt)
        rejected = result.rejected
        parts = [
            _events_out("event", result.events, rows[result.event_rows]),
            _events_out("anonymous", result.anonymous, rows[result.anonymous_rows]),
            pd.DataFrame(
                {
                    "kind": "rejected",
                    "row": rows[rejected.column("row").to_numpy() - 1],
                    "reason": rejected.column("reason").to_pylist(),
                    **{f"raw_{c}": rejected.column(c).to_pylist() for c in columns},
                }
            ),
            pd.DataFrame({"kind": ["report"], "report": [json.dumps(result.report.to_dict())]}),
        ]
        for part in parts:
            if len(part):
                yield _complete(part, types)

    return run


def in_file_order(batches: Iterator[pd.DataFrame]) -> pd.DataFrame | None:
    """Return a partition's batches as one frame in file order (None when it is empty)."""
    parts = [b for b in batches if len(b)]
    if not parts:
        return None
    return pd.concat(parts, ignore_index=True).sort_values("row", kind="stable", ignore_index=True)


def _complete(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Return the frame with every column of the schema, missing ones as 0, NaN or None."""
    blank = {"long": 0, "double": np.nan, "string": None}
    n = len(frame)
    columns = {
        name: frame[name]
        if name in frame.columns
        else pd.Series([blank[kind]] * n, dtype=object if kind == "string" else None)
        for name, kind in types.items()
    }
    return plain(pd.DataFrame(columns))


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the frame with text columns as numpy objects (pyspark cannot send pandas 3 strings)."""
    text = [c for c in frame.columns if frame[c].dtype != object and pd.api.types.is_string_dtype(frame[c])]
    return frame.astype({c: object for c in text}) if text else frame


def _text(values: pd.Series) -> pa.Array:
    """Return a text column as an Arrow string array, every missing marker (None, NaN) as null."""
    if values.dtype != object and not pd.api.types.is_string_dtype(values):
        values = values.astype(object).where(values.notna(), None)
    return pa.array(values, pa.string(), from_pandas=True)


def _events_out(kind: str, events: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Return validated events as the Spark schema's columns (ids as text, time in nanoseconds)."""
    out = pd.DataFrame({"kind": kind, "row": rows})
    for name in ("user_id", "item_id", "event_type", "order_id", "item_name", "category"):
        column = events[name] if name in events.columns else pd.Series([None] * len(events))
        out[name] = column.astype(object).where(column.notna().to_numpy(), None).to_numpy()
    out["timestamp"] = timestamp_ns(events["timestamp"])
    out["quantity"] = events["quantity"].to_numpy(np.float64)
    out["price"] = events["price"].to_numpy(np.float64)
    return out


def event_frame(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Return Spark's validated events (``EVENT_SCHEMA``, in row order) as the local engine's frame."""

    def cat(values: pd.Series) -> pd.Categorical:
        return pd.Categorical(values.astype(object).where(values.notna(), None))

    out = pd.DataFrame(
        {
            "user_id": cat(frame["user_id"]),
            "item_id": cat(frame["item_id"]),
            "event_type": pd.Categorical(frame["event_type"], categories=pd.Index(_EVENT_TYPES)),
            "timestamp": pd.Series(
                frame["timestamp"].to_numpy(np.int64).view("datetime64[ns]")
            ).dt.tz_localize("UTC"),
            "order_id": cat(frame["order_id"]),
            "quantity": frame["quantity"].to_numpy(np.float32),
            "price": frame["price"].to_numpy(np.float64),
        }
    )
    for name in ("item_name", "category"):
        if name in columns:
            out[name] = cat(frame[name])
    return out
