"""Models without implicit: the popularity baseline and EASE."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp

from training.models.base import ModelError, OnEpoch, Recommender
from training.models.ease import dense_ease, sparse_ease
from training.models.params import Hyperparameters

__all__ = ["EaseModel", "EaseParams", "PopularModel"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EaseParams(Hyperparameters):
    """EASE's L2 penalty, 0/1 inputs, and how it scales: exact up to ``max_items``, sparse above.

    ``variant`` ``auto`` solves exactly (dense, cubic in items) up to ``max_items`` items and
    sparsely above (each item's ``neighbours`` strongest co-occurring items; see ``models.ease``);
    the fitted model records the variant it used.
    """

    regularization: float = 250.0
    binary: bool = True
    max_items: int = 30_000
    variant: Literal["auto", "dense", "sparse"] = "auto"
    neighbours: int = 200


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
    """EASE (Steck 2019): B = I - P / diag(P), P = (XᵀX + λI)⁻¹, diag(B) = 0; sparse past max_items."""

    kind = "ease"
    Params = EaseParams
    params: EaseParams
    weights: np.ndarray | sp.csr_matrix

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Solve for the item-item weights, exactly or sparsely by catalog size (``variant``)."""
        n_items = user_items.shape[1]
        variant = self.params.variant
        if variant == "auto":
            variant = "dense" if n_items <= self.params.max_items else "sparse"
        if variant == "dense" and n_items > self.params.max_items:
            raise ModelError(
                f"dense ease is cubic in items: {n_items:,} items exceed max_items="
                f"{self.params.max_items:,}; use variant=auto or sparse, or raise max_items"
            )
        x = user_items.astype(np.float64)
        if self.params.binary:
            x.data[:] = 1.0
        if variant == "dense":
            self.weights = dense_ease((x.T @ x).toarray(), self.params.regularization).astype(np.float32)
        else:
            logger.warning(
                "ease: %s items > max_items=%s: sparse EASE on each item's %d strongest co-occurring items",
                f"{n_items:,}",
                f"{self.params.max_items:,}",
                self.params.neighbours,
            )
            self.weights = sparse_ease(sp.csr_matrix(x), self.params.regularization, self.params.neighbours)
        self.params = replace(self.params, variant=variant)
        self._set_columns()
        self.n_items = n_items

    def _set_columns(self) -> None:
        """Keep a column-major copy of sparse weights, for ``influence``."""
        self._columns = sp.csc_matrix(self.weights) if sp.issparse(self.weights) else None

    def _inputs(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """Return the history, binarised when the model was fitted on binary data."""
        x = sp.csr_matrix(history, dtype=np.float32, copy=True)
        if self.params.binary:
            x.data[:] = 1.0
        return x

    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return history @ B."""
        scores = self._inputs(history) @ self.weights
        return scores.toarray() if sp.issparse(scores) else np.asarray(scores)

    def item_similarity(self, item_idx: int) -> np.ndarray:
        """Return the item's row of B (what it adds to every other item)."""
        if sp.issparse(self.weights):
            return np.asarray(self.weights[item_idx].toarray()).ravel()
        return self.weights[item_idx].copy()

    def influence(self, item_idx: int) -> np.ndarray:
        """Return the item's column of B (what every item adds to it)."""
        if self._columns is not None:
            return np.asarray(self._columns[:, item_idx].toarray()).ravel()
        return self.weights[:, item_idx].copy()

    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return B."""
        return {"weights": self.weights}

    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set B (dense, or sparse when the sparse variant fitted it)."""
        weights = arrays["weights"]
        if sp.issparse(weights):
            self.weights = sp.csr_matrix(weights, dtype=np.float32)
        else:
            self.weights = np.asarray(weights, dtype=np.float32)
        self._set_columns()
        self.n_items = self.weights.shape[0]
