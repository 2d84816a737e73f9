"""Models without implicit: the popularity baseline and EASE."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from training.models.base import ModelError, OnEpoch, Recommender
from training.models.params import Hyperparameters

__all__ = ["EaseModel", "EaseParams", "PopularModel"]


@dataclass(frozen=True)
class EaseParams(Hyperparameters):
    """EASE's L2 penalty, whether it sees interactions as 0/1, and the most items it inverts."""

    regularization: float = 250.0
    binary: bool = True
    max_items: int = 30_000


class PopularModel(Recommender):
    """Rank items by how many users interacted with them; the baseline beside every figure."""

    kind = "popular"

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Count distinct users per item."""
        self.popularity = np.asarray(user_items.getnnz(axis=0), dtype=np.float32)
        self.n_items = len(self.popularity)

    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return the same popularity for every row."""
        return np.broadcast_to(self.popularity, (history.shape[0], self.n_items)).copy()

    def item_similarity(self, item_idx: int) -> np.ndarray:
        """Return popularity: without a model, popular items are the best guess."""
        return self.popularity.copy()

    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return the popularity counts."""
        return {"popularity": self.popularity}

    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set the popularity counts."""
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float32)
        self.n_items = len(self.popularity)


class EaseModel(Recommender):
    """EASE (Steck 2019): B = I - P / diag(P), P = (XᵀX + λI)⁻¹, diag(B) = 0; cubic in items."""

    kind = "ease"
    Params = EaseParams
    params: EaseParams

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Solve for the item-item weight matrix in closed form."""
        n_items = user_items.shape[1]
        if n_items > self.params.max_items:
            raise ModelError(
                f"ease is cubic in items: {n_items:,} items exceed max_items="
                f"{self.params.max_items:,}; use als or an item-kNN model, or raise max_items"
            )
        x = user_items.astype(np.float64)
        if self.params.binary:
            x.data[:] = 1.0
        gram = (x.T @ x).toarray()
        gram[np.diag_indices(n_items)] += self.params.regularization
        p = np.linalg.inv(gram)
        weights = p / (-np.diag(p))
        weights[np.diag_indices(n_items)] = 0.0
        self.weights = weights.astype(np.float32)
        self.n_items = n_items

    def _inputs(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """Return the history, binarised when the model was fitted on binary data."""
        x = sp.csr_matrix(history, dtype=np.float32, copy=True)
        if self.params.binary:
            x.data[:] = 1.0
        return x

    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return history @ B."""
        return np.asarray(self._inputs(history) @ self.weights)

    def item_similarity(self, item_idx: int) -> np.ndarray:
        """Return the item's row of B (what it adds to every other item)."""
        return self.weights[item_idx].copy()

    def influence(self, item_idx: int) -> np.ndarray:
        """Return the item's column of B (what every item adds to it)."""
        return self.weights[:, item_idx].copy()

    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return B."""
        return {"weights": self.weights}

    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set B."""
        self.weights = np.asarray(arrays["weights"], dtype=np.float32)
        self.n_items = self.weights.shape[0]
