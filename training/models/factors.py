"""Matrix factorisation from implicit: ALS, BPR and LMF."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.cpu.lmf import LogisticMatrixFactorization
from threadpoolctl import threadpool_limits

from training.models.base import OnEpoch, Recommender
from training.models.params import Hyperparameters

__all__ = [
    "ALSModel",
    "ALSParams",
    "BPRModel",
    "BPRParams",
    "FactorModel",
    "FactorParams",
    "LMFModel",
    "LMFParams",
]


@dataclass(frozen=True)
class FactorParams(Hyperparameters):
    """What every factor model takes; the names are implicit's keywords."""

    factors: int = 64
    iterations: int = 15
    regularization: float = 0.01
    random_state: int | None = 42


@dataclass(frozen=True)
class ALSParams(FactorParams):
    """ALS's confidence scaling; ``report_loss`` computes implicit's training loss each epoch."""

    alpha: float = 1.0
    report_loss: bool = True


@dataclass(frozen=True)
class BPRParams(FactorParams):
    """BPR runs more, cheaper epochs, each a step of ``learning_rate``."""

    iterations: int = 100
    learning_rate: float = 0.01


@dataclass(frozen=True)
class LMFParams(FactorParams):
    """LMF's defaults are implicit's, with ``neg_prop`` negatives per positive."""

    factors: int = 30
    iterations: int = 30
    regularization: float = 0.6
    learning_rate: float = 1.0
    neg_prop: int = 30


class FactorModel(Recommender):
    """Matrix factorisation from implicit; subclasses build the implicit model and may override
    how an epoch is reported, how a new history is folded in, and how a score is explained.

    The defaults here: no epoch metric; fold-in approximated from item factors (the mean of the
    history's item factors); explanations by cosine of factors.
    """

    fold_in = "approximate"

    @abstractmethod
    def _implicit(self) -> Any:
        """Return a fresh implicit model built from ``self.params``."""

    def _epoch_metric(self, metric: tuple[Any, ...]) -> float | None:
        """Return what an epoch reports from implicit's callback values (none by default)."""
        return None

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Fit with BLAS on one thread (much faster here), reporting each epoch."""

        def callback(epoch: int, _elapsed: float, *metric: Any) -> None:
            if on_epoch is not None:
                on_epoch(epoch, self._epoch_metric(metric))

        with threadpool_limits(1, "blas"):
            model = self._implicit_gpu() if self.device == "gpu" else self._implicit()
            model.fit(user_items.astype(np.float32), show_progress=False, callback=callback)
            if self.device == "gpu":
                model = model.to_cpu()  # the artifact holds CPU arrays whatever trained it
        self._model = model
        self.restore({"user_factors": model.user_factors, "item_factors": model.item_factors})

    def _implicit_gpu(self) -> Any:
        """Return implicit's CUDA model built from ``self.params`` (kinds in ``devices`` with gpu)."""
        raise NotImplementedError(f"{self.kind} has no GPU model")

    def _user_vectors(self, history: sp.csr_matrix, user_idx: np.ndarray | None) -> np.ndarray:
        """Return fitted factors for known users and folded-in factors for the others."""
        vectors = np.empty((history.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        known = np.zeros(history.shape[0], dtype=bool)
        if user_idx is not None:
            user_idx = np.asarray(user_idx)
            known = (user_idx >= 0) & (user_idx < len(self.user_factors))
            vectors[known] = self.user_factors[user_idx[known]]
        if (~known).any():
            vectors[~known] = self._fold_in(history[np.flatnonzero(~known)])
        return vectors

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Approximate user factors for new histories: the mean of their items' factors."""
        weights = sp.diags(1.0 / np.maximum(history.getnnz(axis=1), 1)) @ (history > 0).astype(np.float32)
        vectors = np.asarray(weights @ self.item_factors, dtype=np.float32)
        vectors[:, self._constant_user_columns] = 1.0
        return vectors

    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return user vectors @ item factorsᵀ."""
        return self._user_vectors(history, user_idx) @ self.item_factors.T

    def item_similarity(self, item_idx: int) -> np.ndarray:
        """Return the cosine of the item's factors with every item's."""
        return self._normed @ self._normed[item_idx]

    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return user and item factors."""
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set factors and the caches derived from them."""
        self.user_factors = np.ascontiguousarray(arrays["user_factors"], dtype=np.float32)
        self.item_factors = np.ascontiguousarray(arrays["item_factors"], dtype=np.float32)
        self.n_items = len(self.item_factors)
        norms = np.linalg.norm(self.item_factors, axis=1, keepdims=True)
        self._normed = self.item_factors / np.maximum(norms, 1e-12)
        ones = np.all(self.user_factors == 1.0, axis=0) if len(self.user_factors) else np.zeros(0, bool)
        self._constant_user_columns = np.flatnonzero(ones)


class ALSModel(FactorModel):
    """Alternating least squares (implicit): exact fold-in and implicit's own explanations."""

    kind = "als"
    fold_in = "native"
    devices = frozenset({"cpu", "gpu"})
    Params = ALSParams
    params: ALSParams

    def _implicit(self) -> Any:
        return AlternatingLeastSquares(**self._keywords())

    def _implicit_gpu(self) -> Any:
        from implicit.gpu.als import AlternatingLeastSquares as CudaALS

        return CudaALS(**self._keywords())

    def _keywords(self) -> dict[str, Any]:
        p = self.params
        return {
            "factors": p.factors,
            "regularization": p.regularization,
            "alpha": p.alpha,
            "iterations": p.iterations,
            "calculate_training_loss": p.report_loss,
            "random_state": p.random_state,
        }

    def _epoch_metric(self, metric: tuple[Any, ...]) -> float | None:
        """Report the training loss, when implicit computes it."""
        return float(metric[0]) if metric and metric[0] is not None else None

    def _fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """Solve the ALS user factors of new histories exactly."""
        with threadpool_limits(1, "blas"):
            return np.asarray(
                self._als().recalculate_user(np.arange(history.shape[0]), history.astype(np.float32))
            )

    def _als(self) -> Any:
        if getattr(self, "_model", None) is None:
            with threadpool_limits(1, "blas"):
                self._model = self._implicit()
            self._model.user_factors, self._model.item_factors = (
                self.user_factors,
                self.item_factors,
            )
        return self._model

    def contributions(self, history: sp.csr_matrix, item_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Explain through implicit's ALS ``explain``."""
        row = sp.csr_matrix(history[0] if history.shape[0] > 1 else history, dtype=np.float32)
        _, top, _ = self._als().explain(0, row, item_idx, N=row.nnz or 1)
        idx = np.array([i for i, _ in top], dtype=np.int64)
        return idx, np.array([s for _, s in top], dtype=np.float32)


class BPRModel(FactorModel):
    """Bayesian personalised ranking (implicit); fold-in approximated from item factors."""

    kind = "bpr"
    fold_in = "approximate"
    devices = frozenset({"cpu", "gpu"})
    Params = BPRParams

    def _implicit(self) -> Any:
        return BayesianPersonalizedRanking(**self.params.as_dict())

    def _implicit_gpu(self) -> Any:
        from implicit.gpu.bpr import BayesianPersonalizedRanking as CudaBPR

        return CudaBPR(**self.params.as_dict())

    def _epoch_metric(self, metric: tuple[Any, ...]) -> float | None:
        """Report the share of correctly ranked pairs (implicit passes correct, skipped)."""
        if len(metric) == 2 and sum(metric) > 0:
            return float(metric[0]) / float(sum(metric))
        return None


class LMFModel(FactorModel):
    """Logistic matrix factorisation (implicit); fold-in approximated from item factors."""

    kind = "lmf"
    fold_in = "approximate"
    Params = LMFParams

    def _implicit(self) -> Any:
        return LogisticMatrixFactorization(**self.params.as_dict())
