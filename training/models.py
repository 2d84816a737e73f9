"""The models: one small interface over implicit (ALS, BPR, LMF, item-kNN), popularity and EASE.

Every model scores a batch of histories (rows of a user x item confidence matrix) into dense
item scores. Known users may pass their row indexes so factor models use their fitted factors;
anyone else is folded in from the history alone (ALS ``recalculate_user``, item-kNN and EASE
natively; BPR and LMF approximately, from the mean of the history's item factors). Models save
to and load from a directory of numpy/scipy files and a ``model.json``: never pickle. This module
imports no MLflow, typer or plotting, so the service scores with exactly these classes.
"""

from __future__ import annotations

import json
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from implicit import nearest_neighbours as nn
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.cpu.lmf import LogisticMatrixFactorization
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

__all__ = [
    "MODEL_KINDS",
    "ModelError",
    "Recommender",
    "create_model",
    "load_model",
    "save_model",
    "top_n",
]

logger = logging.getLogger(__name__)

#: Called after each training epoch with (epoch, metric or None).
OnEpoch = Callable[[int, float | None], None]


class ModelError(ValueError):
    """A model cannot be built, fitted or loaded as asked."""


def top_n(
    scores: np.ndarray, n: int, exclude: sp.csr_matrix | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the best ``n`` item indexes and scores per row, best first, skipping ``exclude``.

    ``exclude`` is a sparse matrix (its stored cells) or a boolean mask of the same shape (or one
    row for all). Excluded and non-finite items score ``-inf`` and sort last; callers drop them.
    """
    scores = np.array(np.atleast_2d(scores), dtype=np.float32, copy=True)
    if isinstance(exclude, sp.spmatrix | sp.sparray):
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    elif exclude is not None:
        scores[np.broadcast_to(exclude, scores.shape)] = -np.inf
    scores[~np.isfinite(scores)] = -np.inf
    n = min(n, scores.shape[1])
    if n <= 0:
        empty = np.zeros((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(np.float32)
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx.astype(np.int64), np.take_along_axis(scores, idx, axis=1)


class Recommender(ABC):
    """Fit on a user x item confidence matrix; score histories; find similar items."""

    kind: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    fold_in: ClassVar[str] = "native"

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            known = ", ".join(sorted(self.defaults)) or "none"
            raise ModelError(f"{self.kind} has no parameter {', '.join(sorted(unknown))}; known: {known}")
        self.params: dict[str, Any] = {**self.defaults, **params}
        self.n_items = 0

    @abstractmethod
    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Learn from the training matrix."""

    @abstractmethod
    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return dense scores (rows x items) for histories; ``user_idx`` marks known users."""

    @abstractmethod
    def item_similarity(self, item_idx: int) -> np.ndarray:
        """Return the similarity of one item to every item (dense)."""

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return the learned state to save."""

    @abstractmethod
    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set the learned state from saved arrays."""

    def recommend(
        self,
        history: sp.csr_matrix,
        n: int,
        user_idx: np.ndarray | None = None,
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the top ``n`` items per history row, already-seen items left out by default."""
        return top_n(self.score(history, user_idx), n, history if exclude_seen else None)

    def similar_items(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``n`` items most similar to one item (itself excluded)."""
        sims = self.item_similarity(item_idx)[None, :]
        mask = np.zeros_like(sims, dtype=bool)
        mask[0, item_idx] = True
        idx, vals = top_n(sims, n, mask)
        return idx[0], vals[0]

    def influence(self, item_idx: int) -> np.ndarray:
        """Return how much one unit of each item in a history adds to ``item_idx``'s score."""
        return self.item_similarity(item_idx)

    def contributions(self, history: sp.csr_matrix, item_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Return each item of one history row and what it adds to ``item_idx``'s score."""
        row = sp.csr_matrix(history[0] if history.shape[0] > 1 else history)
        return row.indices.copy(), (row.data * self.influence(item_idx)[row.indices]).astype(np.float32)


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
    defaults: ClassVar[dict[str, Any]] = {
        "regularization": 250.0,
        "binary": True,
        "max_items": 30_000,
    }

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Solve for the item-item weight matrix in closed form."""
        n_items = user_items.shape[1]
        if n_items > int(self.params["max_items"]):
            raise ModelError(
                f"ease is cubic in items: {n_items:,} items exceed max_items="
                f"{self.params['max_items']:,}; use als or an item-kNN model, or raise max_items"
            )
        x = user_items.astype(np.float64)
        if self.params["binary"]:
            x.data[:] = 1.0
        gram = (x.T @ x).toarray()
        gram[np.diag_indices(n_items)] += float(self.params["regularization"])
        p = np.linalg.inv(gram)
        weights = p / (-np.diag(p))
        weights[np.diag_indices(n_items)] = 0.0
        self.weights = weights.astype(np.float32)
        self.n_items = n_items

    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return history @ B."""
        x = history.astype(np.float32)
        if self.params["binary"]:
            x.data[:] = 1.0
        return np.asarray(x @ self.weights)

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


class ItemKNNModel(Recommender):
    """Item-item nearest neighbours from implicit (cosine, bm25, tfidf); scored with scipy."""

    kind = "cosine"
    defaults: ClassVar[dict[str, Any]] = {"neighbours": 100}

    def _implicit(self) -> Any:
        k = int(self.params["neighbours"])
        if self.kind == "bm25":
            return nn.BM25Recommender(K=k, K1=float(self.params["k1"]), B=float(self.params["b"]))
        return {"cosine": nn.CosineRecommender, "tfidf": nn.TFIDFRecommender}[self.kind](K=k)

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
    defaults: ClassVar[dict[str, Any]] = {"neighbours": 100, "k1": 1.2, "b": 0.75}


class TFIDFModel(ItemKNNModel):
    """Item-kNN on TF-IDF-weighted interactions."""

    kind = "tfidf"


class FactorModel(Recommender):
    """Matrix factorisation from implicit: ALS, BPR or LMF."""

    kind = "als"
    fold_in = "native"
    defaults: ClassVar[dict[str, Any]] = {
        "factors": 64,
        "iterations": 15,
        "regularization": 0.01,
        "alpha": 1.0,
        "random_state": 42,
    }

    def _implicit(self) -> Any:
        p = self.params
        return AlternatingLeastSquares(
            factors=int(p["factors"]),
            regularization=float(p["regularization"]),
            alpha=float(p["alpha"]),
            iterations=int(p["iterations"]),
            calculate_training_loss=True,
            random_state=p["random_state"],
        )

    def fit(self, user_items: sp.csr_matrix, on_epoch: OnEpoch | None = None) -> None:
        """Fit with BLAS on one thread (much faster here), reporting each epoch."""

        def callback(epoch: int, _elapsed: float, *metric: Any) -> None:
            if on_epoch is not None:
                value = metric[0] if metric and self.kind == "als" else None
                if self.kind == "bpr" and len(metric) == 2 and sum(metric) > 0:
                    value = float(metric[0]) / float(sum(metric))  # share of correctly ranked pairs
                on_epoch(epoch, None if value is None else float(value))

        with threadpool_limits(1, "blas"):
            model = self._implicit()
            model.fit(user_items.astype(np.float32), show_progress=False, callback=callback)
        self._model = model
        self.restore({"user_factors": model.user_factors, "item_factors": model.item_factors})

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
        """Solve ALS user factors for new histories; approximate for BPR and LMF."""
        if self.kind == "als":
            with threadpool_limits(1, "blas"):
                return np.asarray(
                    self._als().recalculate_user(np.arange(history.shape[0]), history.astype(np.float32))
                )
        weights = sp.diags(1.0 / np.maximum(history.getnnz(axis=1), 1)) @ (history > 0).astype(np.float32)
        vectors = np.asarray(weights @ self.item_factors, dtype=np.float32)
        vectors[:, self._constant_user_columns] = 1.0
        return vectors

    def _als(self) -> Any:
        if getattr(self, "_model", None) is None:
            with threadpool_limits(1, "blas"):
                self._model = self._implicit()
            self._model.user_factors, self._model.item_factors = (
                self.user_factors,
                self.item_factors,
            )
        return self._model

    def score(self, history: sp.csr_matrix, user_idx: np.ndarray | None = None) -> np.ndarray:
        """Return user vectors @ item factorsᵀ."""
        return self._user_vectors(history, user_idx) @ self.item_factors.T

    def item_similarity(self, item_idx: int) -> np.ndarray:
        """Return the cosine of the item's factors with every item's."""
        return self._normed @ self._normed[item_idx]

    def contributions(self, history: sp.csr_matrix, item_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Explain through implicit's ALS ``explain``; cosine of factors for BPR and LMF."""
        if self.kind != "als":
            return super().contributions(history, item_idx)
        row = sp.csr_matrix(history[0] if history.shape[0] > 1 else history, dtype=np.float32)
        _, top, _ = self._als().explain(0, row, item_idx, N=row.nnz or 1)
        idx = np.array([i for i, _ in top], dtype=np.int64)
        return idx, np.array([s for _, s in top], dtype=np.float32)

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


class BPRModel(FactorModel):
    """Bayesian personalised ranking (implicit); fold-in approximated from item factors."""

    kind = "bpr"
    fold_in = "approximate"
    defaults: ClassVar[dict[str, Any]] = {
        "factors": 64,
        "iterations": 100,
        "regularization": 0.01,
        "learning_rate": 0.01,
        "random_state": 42,
    }

    def _implicit(self) -> Any:
        p = self.params
        return BayesianPersonalizedRanking(
            factors=int(p["factors"]),
            learning_rate=float(p["learning_rate"]),
            regularization=float(p["regularization"]),
            iterations=int(p["iterations"]),
            random_state=p["random_state"],
        )


class LMFModel(FactorModel):
    """Logistic matrix factorisation (implicit); fold-in approximated from item factors."""

    kind = "lmf"
    fold_in = "approximate"
    defaults: ClassVar[dict[str, Any]] = {
        "factors": 30,
        "iterations": 30,
        "regularization": 0.6,
        "learning_rate": 1.0,
        "neg_prop": 30,
        "random_state": 42,
    }

    def _implicit(self) -> Any:
        p = self.params
        return LogisticMatrixFactorization(
            factors=int(p["factors"]),
            learning_rate=float(p["learning_rate"]),
            regularization=float(p["regularization"]),
            iterations=int(p["iterations"]),
            neg_prop=int(p["neg_prop"]),
            random_state=p["random_state"],
        )


MODEL_KINDS: dict[str, type[Recommender]] = {
    cls.kind: cls
    for cls in (
        FactorModel,
        BPRModel,
        LMFModel,
        ItemKNNModel,
        BM25Model,
        TFIDFModel,
        PopularModel,
        EaseModel,
    )
}


def create_model(kind: str, **params: Any) -> Recommender:
    """Return an unfitted model of ``kind`` with ``params`` over its defaults."""
    if kind not in MODEL_KINDS:
        raise ModelError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    return MODEL_KINDS[kind](**params)


def save_model(model: Recommender, directory: Path) -> None:
    """Write ``model.json`` and one ``.npy`` (dense) or ``.npz`` (sparse) file per array."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, value in model.arrays().items():
        if sp.issparse(value):
            sp.save_npz(directory / f"{name}.npz", sp.csr_matrix(value), compressed=False)
            files[name] = f"{name}.npz"
        else:
            np.save(directory / f"{name}.npy", np.asarray(value), allow_pickle=False)
            files[name] = f"{name}.npy"
    meta = {"kind": model.kind, "params": model.params, "n_items": model.n_items, "arrays": files}
    (directory / "model.json").write_text(json.dumps(meta, indent=2, default=str))


def load_model(directory: Path) -> Recommender:
    """Read a model written by ``save_model``; a missing or corrupt file raises ModelError."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "model.json").read_text())
        model = create_model(meta["kind"], **meta["params"])
        arrays: dict[str, np.ndarray | sp.csr_matrix] = {}
        for name, file in meta["arrays"].items():
            path = directory / file
            arrays[name] = (
                sp.load_npz(path).tocsr() if file.endswith(".npz") else np.load(path, allow_pickle=False)
            )
        model.restore(arrays)
    except (OSError, KeyError, ValueError, TypeError, EOFError) as exc:
        raise ModelError(f"{directory}: cannot load the model ({exc})") from exc
    if model.n_items != int(meta["n_items"]):
        raise ModelError(f"{directory}: model has {model.n_items} items, model.json says {meta['n_items']}")
    return model
