"""Score every user of a registered model in Spark with ``mlflow.pyfunc.spark_udf``: a batch export.

The MLflow Model (``training.pyfunc``) runs inside Spark's Python workers, one Arrow batch of user
ids at a time, so the export scales with the executors; the rows are what
``mlflow.pyfunc.load_model(...).predict`` returns: ``item_ids`` best first and their ``scores``.
The user ids come from a file (a ``user_id`` column, CSV or Parquet) or, by default, the model's
own artifact (every user it was trained on). Rules and live events are the service's and are not
applied here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.artifact import MLFLOW_ARTIFACT_KEY
from features.ids import IdIndex
from features.io import read_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["RESULT_TYPE", "score_users"]

#: The MLflow Model's output (its signature) as a Spark type.
RESULT_TYPE = "struct<item_ids:array<string>,scores:array<double>>"


def _model_users(model_uri: str) -> np.ndarray:
    """Return the user ids of the artifact inside the MLflow Model at ``model_uri``."""
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        f"{model_uri.rstrip('/')}/artifacts/{MLFLOW_ARTIFACT_KEY}/users.npy"
    )
    return np.load(local, allow_pickle=False).astype(str)


def _file_users(path: Path) -> np.ndarray:
    """Return the distinct ``user_id`` values of a CSV or Parquet file (a missing column is a DataError)."""
    column = read_table(path, {"user_id": "user_id"}, required=("user_id",)).column("user_id")
    return IdIndex.from_values(column.to_pandas()).ids


def score_users(
    spark: SparkSession, model_uri: str, n: int, users: Path | None = None
) -> tuple[DataFrame, int]:
    """Return (user_id, item_ids, scores) per user, scored by the MLflow Model in Spark, and the count."""
    import mlflow.pyfunc
    from pyspark.sql import functions as sf

    ids = _model_users(model_uri) if users is None else _file_users(users)
    frame = spark.createDataFrame(pd.DataFrame({"user_id": ids.astype(object)}), "user_id string")
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=RESULT_TYPE, env_manager="local")
    scored = frame.withColumn("n", sf.lit(n).cast("long")).withColumn("recs", udf(sf.struct("user_id", "n")))
    columns = ("user_id", sf.col("recs.item_ids").alias("item_ids"), sf.col("recs.scores").alias("scores"))
    return scored.select(*columns), len(ids)
