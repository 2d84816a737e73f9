"""ALS fitted by Spark MLlib with implicit preferences; saved, loaded and served as ``als``.

The options map onto MLlib's: ``factors`` -> ``rank``, ``iterations`` -> ``maxIter``, ``alpha``
-> ``alpha`` and ``random_state`` -> ``seed``. MLlib scales the L2 penalty by each user's number
of interactions (ALS-WR) where implicit does not, so ``regParam`` is ``regularization`` over the
mean interactions per user: the average user is penalised as implicit would. The factors come back
to the driver and the artifact holds them exactly as an implicit fit's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.errors import ModelError
from training.models.base import OnEpoch
from training.models.factors import ALSModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["SparkALSModel", "mllib_reg_param"]


def mllib_reg_param(regularization: float, user_items: sp.csr_matrix) -> float:
    """Return MLlib's ``regParam`` for implicit's ``regularization`` on this matrix."""
    per_user = user_items.nnz / max(int((user_items.getnnz(axis=1) > 0).sum()), 1)
    return regularization / max(per_user, 1.0)


def _dense(factors: DataFrame, n: int, rank: int) -> np.ndarray:
    """Return MLlib's (id, features) rows as an n x rank array (zeros for ids it never saw)."""
    frame = factors.toPandas()
    out = np.zeros((n, rank), dtype=np.float32)
    if len(frame):
        out[frame["id"].to_numpy()] = np.stack(list(frame["features"])).astype(np.float32)
    return out


class SparkALSModel(ALSModel):
    """ALS whose ``fit`` runs in the active Spark session (MLlib); everything else is ``als``."""

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Fit MLlib ALS on the matrix's entries and keep its factors."""
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise ModelError("--engine spark: no Spark session is running")
        p = self.params
        coo = user_items.tocoo()
        ratings = spark.createDataFrame(
            pd.DataFrame(
                {
                    "user": coo.row.astype(np.int32),
                    "item": coo.col.astype(np.int32),
                    "rating": coo.data.astype(np.float32),
                }
            ),
            "user int, item int, rating float",
        )
        als = ALS(
            rank=p.factors,
            maxIter=p.iterations,
            regParam=mllib_reg_param(p.regularization, user_items),
            alpha=p.alpha,
            implicitPrefs=True,
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            seed=p.random_state if p.random_state is not None else 0,
        )
        fitted = als.fit(ratings)
        n_users, n_items = user_items.shape
        self._model = None
        self.restore(
            {
                "user_factors": _dense(fitted.userFactors, n_users, p.factors),
                "item_factors": _dense(fitted.itemFactors, n_items, p.factors),
            }
        )
        if on_epoch is not None:
            on_epoch(p.iterations - 1, None)
