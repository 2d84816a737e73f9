"""The model artifact as an MLflow Model: a ``python_function`` flavour written as a model from code.

``mlflow.pyfunc.load_model("models:/orderlift@production").predict(pd.DataFrame({"user_id": [...]}))``
returns one row per input row: ``item_ids`` (best first) and ``scores``, the model's own
recommendations for a known user (what they already have or dismissed left out), the most popular
items for an unknown one. An optional ``n`` column (1-100, default 10) sets the length per row.
Nothing is pickled: MLflow runs this file to build the model, which reads the orderlift artifact
kept inside the MLflow Model (``artifacts/orderlift``) with ``features.artifact``. The service reads
that directory directly and never imports MLflow's pyfunc. Merchandising rules and live events are
the service's; batch scoring here does not apply them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from features.artifact import MLFLOW_ARTIFACT_KEY, load_artifact
from training.models import load_model, top_n

__all__ = ["DEFAULT_N", "MAX_N", "OrderliftModel"]

DEFAULT_N, MAX_N = 10, 100


class OrderliftModel(PythonModel):
    """Recommend for user ids from the orderlift artifact inside the MLflow Model."""

    def load_context(self, context: Any) -> None:
        """Load the artifact and its recommender (signature checked when the artifact is signed)."""
        self.artifact = load_artifact(Path(context.artifacts[MLFLOW_ARTIFACT_KEY]), verify=True)
        self.model = load_model(self.artifact.model_dir)
        self.item_ids = np.asarray(self.artifact.items.ids).astype(str).astype(object)  # plain str out
        self.popular = np.argsort(-self.artifact.popularity, kind="stable")

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Return ``item_ids`` and ``scores`` per input row (see the module docstring)."""
        users = model_input["user_id"].astype(str).to_numpy()
        sizes = (
            model_input["n"].fillna(DEFAULT_N).astype(int).clip(1, MAX_N).to_numpy()
            if "n" in model_input.columns
            else np.full(len(users), DEFAULT_N)
        )
        rows = self.artifact.users.to_index(users)
        known = np.flatnonzero(rows >= 0)
        n = int(sizes.max()) if len(sizes) else DEFAULT_N
        item_lists: list[list[str]] = [list(self.item_ids[self.popular[:k]]) for k in sizes]
        score_lists: list[list[float]] = [
            [float(self.artifact.popularity[i]) for i in self.popular[:k]] for k in sizes
        ]
        if len(known):
            history = self.artifact.history[rows[known]]
            excluded = history
            if self.artifact.dismissed is not None:
                excluded = sp.csr_matrix(history + self.artifact.dismissed[rows[known]])
            idx, values = top_n(self.model.score(history, rows[known]), n, excluded)
            for k, at in enumerate(known):
                keep = np.isfinite(values[k])[: sizes[at]]
                item_lists[at] = list(self.item_ids[idx[k][: sizes[at]][keep]])
                score_lists[at] = [float(v) for v in values[k][: sizes[at]][keep]]
        return pd.DataFrame({"item_ids": item_lists, "scores": score_lists})


set_model(OrderliftModel())
