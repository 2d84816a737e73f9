"""Item-item nearest neighbours from implicit (cosine, bm25, tfidf), scored with scipy."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit import nearest_neighbours as nn
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

from training.models.base import OnEpoch, Recommender
from training.models.params import Hyperparameters

__all__ = ["BM25Model", "BM25Params", "ItemKNNModel", "KNNParams", "TFIDFModel"]


@dataclass(frozen=True)
class KNNParams(Hyperparameters):
    """How many neighbours each item keeps."""

    neighbours: int = 100


@dataclass(frozen=True)
class BM25Params(KNNParams):
    """BM25's term saturation ``k1`` and length normalisation ``b``."""

    k1: float = 1.2
    b: float = 0.75


class ItemKNNModel(Recommender):
    """Item-item nearest neighbours from implicit (cosine, bm25, tfidf); scored with scipy."""

    kind = "cosine"
    Params = KNNParams
    params: KNNParams

    def _implicit(self) -> Any:
        """Return implicit's cosine recommender; subclasses weigh the interactions first."""
        return nn.CosineRecommender(K=self.params.neighbours)

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Compute the top-K item-item similarity matrix."""
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ParameterWarning)  # implicit converts its own COO
            model = self._implicit()
            model.fit(user_items.astype(np.float32), show_progress=False)
        self.restore({"similarity": model.similarity})

    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return history @ similarity."""
        return np.asarray((history.astype(np.float32) @ self.similarity).toarray())

    def item_similarity(self, item_idx: int) -> np.ndarray:
        """Return the item's row of the similarity matrix."""
        return np.asarray(self.similarity[item_idx].toarray()).ravel()

    def influence(self, item_idx: int) -> np.ndarray:
        """Return the item's column of the similarity matrix."""
        return np.asarray(self._by_column[:, item_idx].toarray()).ravel()

    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return the similarity matrix."""
        return {"similarity": self.similarity}

    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set the similarity matrix."""
        self.similarity = sp.csr_matrix(arrays["similarity"], dtype=np.float32)
        self._by_column = self.similarity.tocsc()
        self.n_items = self.similarity.shape[0]


class BM25Model(ItemKNNModel):
    """Item-kNN on BM25-weighted interactions."""

    kind = "bm25"
    Params = BM25Params
    params: BM25Params

    def _implicit(self) -> Any:
        p = self.params
        return nn.BM25Recommender(K=p.neighbours, K1=p.k1, B=p.b)


class TFIDFModel(ItemKNNModel):
    """Item-kNN on TF-IDF-weighted interactions."""

    kind = "tfidf"

    def _implicit(self) -> Any:
        return nn.TFIDFRecommender(K=self.params.neighbours)
