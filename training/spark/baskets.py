"""Co-purchase counts in Spark: the local engine's ``association_stats`` over every order.

A basket is an order id's distinct items, from purchase lines with a positive net quantity of
indexed users and items; anonymous orders are baskets of their own (``features.baskets``). Pairs
are counted with a self-join per basket. MLlib's FPGrowth was not used: it mines itemsets of
every size, and at a support of two baskets wholesale orders of 1,000+ lines make that explode,
while the artifact needs only pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.association import Associations
from features.ids import IdIndex

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["copurchase_counts"]


def _ids(frame: DataFrame, name: str, index: IdIndex, position: str | None) -> DataFrame:
    """Return a small frame of ``index``'s ids (with their positions when ``position`` names a column)."""
    data = {name: index.ids.astype(object)}
    if position is not None:
        data[position] = np.arange(len(index), dtype=np.int32)
    schema = f"{name} string" + (f", {position} int" if position is not None else "")
    return frame.sparkSession.createDataFrame(pd.DataFrame(data), schema)


def copurchase_counts(
    events: DataFrame, anonymous: DataFrame, users: IdIndex, items: IdIndex, min_count: int
) -> Associations:
    """Count baskets per item and per pair of items (pairs seen in fewer than ``min_count`` dropped)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as sf

    ordered = (sf.col("event_type") == "purchase") & sf.col("order_id").isNotNull() & (sf.col("quantity") > 0)
    known = events.where(ordered).join(sf.broadcast(_ids(events, "user_id", users, None)), "user_id")
    lines = (
        known.select(sf.concat(sf.lit("k:"), "order_id").alias("basket"), "item_id")
        .unionByName(
            anonymous.where(ordered).select(sf.concat(sf.lit("a:"), "order_id").alias("basket"), "item_id")
        )
        .join(sf.broadcast(_ids(events, "item_id", items, "item_idx")), "item_id")
        .select("basket", "item_idx")
        .distinct()
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    n_baskets = lines.select("basket").distinct().count()
    per_item = lines.groupBy("item_idx").count().toPandas()
    item_counts = np.zeros(len(items), dtype=np.int64)
    item_counts[per_item["item_idx"].to_numpy()] = per_item["count"].to_numpy()
    left, right = lines.alias("a"), lines.alias("b")
    pairs = (
        left.join(right, sf.col("a.basket") == sf.col("b.basket"))
        .where(sf.col("a.item_idx") < sf.col("b.item_idx"))
        .groupBy(sf.col("a.item_idx").alias("i"), sf.col("b.item_idx").alias("j"))
        .count()
        .where(sf.col("count") >= min_count)
        .toPandas()
    )
    lines.unpersist()
    i, j = pairs["i"].to_numpy(np.int32), pairs["j"].to_numpy(np.int32)
    counts = pairs["count"].to_numpy(np.float32)
    matrix = sp.csr_matrix(
        (np.r_[counts, counts], (np.r_[i, j], np.r_[j, i])), shape=(len(items), len(items)), dtype=np.float32
    )
    matrix.sort_indices()
    return Associations(matrix, item_counts, int(n_baskets))
