"""Load a shop's history with Spark into the ``Dataset`` the training job takes.

Spark reads and validates every row (``training.spark.validation``), sums each (user, item)
pair's confidence (``features.matrix.build_matrix``, per partition: a user's events are all in
one) and counts co-purchases (``training.spark.baskets``). The driver receives the validated
events for what it computes itself (the holdout, sessions, KPIs, the cart model), and builds the
ids and item metadata from them with the local engine's functions: same ids, same order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.dataset import Dataset, indexed_anonymous, load_catalog
from features.ids import IdIndex
from features.io import SourceFormat
from features.kcore import kcore
from features.matrix import Weighting, build_interactions, build_matrix, observed
from features.validate import ValidationResult
from training.spark.baskets import copurchase_counts
from training.spark.session import partitions_of
from training.spark.validation import event_frame, in_file_order, plain, read_events, validate_events

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["load_dataset_spark"]

logger = logging.getLogger(__name__)


def load_dataset_spark(
    spark: SparkSession,
    source: str | Path,
    fmt: SourceFormat,
    items_path: Path | None = None,
    weighting: Weighting | None = None,
    min_user: int = 1,
    min_item: int = 1,
    min_pair_count: int = 2,
) -> Dataset:
    """Load events (and an optional catalog) into a Dataset, the heavy steps in Spark."""
    began = time.perf_counter()
    checked = validate_events(read_events(spark, source, fmt), fmt, partitions_of(spark))
    logger.info(
        "spark: read and validated %d rows in %.1f s", checked.report.rows_read, time.perf_counter() - began
    )
    columns = checked.columns
    accepted = event_frame(checked.events.orderBy("row").toPandas(), columns)
    anonymous = event_frame(checked.anonymous.orderBy("row").toPandas(), columns)
    logger.info(
        "spark: %d validated events to the driver at %.1f s", len(accepted), time.perf_counter() - began
    )
    events = kcore(accepted, min_user, min_item)

    def in_spark(
        local: pd.DataFrame, users: IdIndex, items: IdIndex, given: Weighting | None
    ) -> sp.csr_matrix:
        """Sum the confidences in Spark; decay is measured from the kept events' latest, as locally."""
        weights = given or Weighting()
        if weights.half_life_days is not None and weights.reference_time is None and len(local):
            weights = replace(weights, reference_time=local["timestamp"].max())
        return _matrix(checked.events, columns, users, items, weights)

    catalog = load_catalog(items_path, fmt.item_columns) if items_path is not None else None
    interactions = build_interactions(events, weighting, catalog, matrix_of=in_spark)
    users, items = interactions.users, interactions.items
    logger.info("spark: %d weighted pairs at %.1f s", interactions.matrix.nnz, time.perf_counter() - began)
    validation = ValidationResult(accepted, checked.rejected_table(), checked.report, anonymous)
    copurchase = copurchase_counts(checked.events, checked.anonymous, users, items, min_pair_count)
    logger.info("spark: co-purchase counts at %.1f s", time.perf_counter() - began)
    logger.info(
        "spark dataset: %d users x %d items, %d interactions", len(users), len(items), interactions.matrix.nnz
    )
    return Dataset(
        validation,
        events,
        interactions,
        catalog,
        indexed_anonymous(anonymous, interactions),
        copurchase,
    )


def _matrix(
    events: DataFrame, columns: tuple[str, ...], users: IdIndex, items: IdIndex, weighting: Weighting
) -> sp.csr_matrix:
    """Sum confidences per (user, item) in Spark; keep the pairs of indexed users and items."""
    pairs = events.mapInPandas(
        _pair_weights(columns, weighting), "user_id string, item_id string, weight float"
    )
    found = pairs.toPandas()
    rows, cols = users.to_index(found["user_id"].to_numpy()), items.to_index(found["item_id"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    values = found["weight"].to_numpy(np.float32)[keep]
    matrix = sp.csr_matrix(
        (values, (rows[keep], cols[keep])), shape=(len(users), len(items)), dtype=np.float32
    )
    matrix.sort_indices()
    return matrix


def _pair_weights(
    columns: tuple[str, ...], weighting: Weighting
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """Return the per-partition function: ``build_matrix`` on the partition's users."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        frame = in_file_order(batches)
        if frame is None:
            return
        local = event_frame(frame, columns)
        users = IdIndex.from_values(observed(local["user_id"]))
        items = IdIndex.from_values(observed(local["item_id"]))
        coo = build_matrix(local, users, items, weighting).tocoo()
        ids = {"user_id": users.ids[coo.row].astype(object), "item_id": items.ids[coo.col].astype(object)}
        yield plain(pd.DataFrame({**ids, "weight": coo.data}))

    return run
