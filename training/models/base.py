"""The model interface: fit, score histories, similar items, explain; and ranking by score."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from training.errors import ModelError
from training.models.params import Hyperparameters, NoParams

__all__ = ["ModelError", "OnEpoch", "Recommender", "best_of", "gpu_available", "top_n"]


def gpu_available() -> bool:
    """Return whether implicit was built with CUDA and sees a GPU."""
    import implicit.gpu

    return bool(implicit.gpu.HAS_CUDA)


def _device_kinds() -> dict[str, frozenset[str]]:
    """Return each registered model kind's devices."""
    from training.models import MODEL_KINDS

    return {kind: cls.devices for kind, cls in MODEL_KINDS.items()}


#: Called after each training epoch with (epoch, metric or None).
OnEpoch = Callable[[int, float | None], None]


def best_of(scores: np.ndarray, n: int) -> np.ndarray:
    """Return the indexes of the ``n`` largest scores of one row, best first (ties: lower index first).

    Exact, and several times faster than ``argpartition`` over a large catalog: a strided sample
    gives a threshold that a few times ``n`` items pass, and only those are ranked. NaN never ranks;
    when fewer than ``n`` pass (a flat or masked row), the whole row is ranked instead.
    """
    size = len(scores)
    n = min(n, size)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    step = size // 1024
    if step >= 16 and n <= 64:
        sample = scores[::step]
        at = len(sample) - min(len(sample), 3 * n // step + 3)
        passed = np.flatnonzero(scores >= np.partition(sample, at)[at])
        if len(passed) >= n:
            return passed[np.lexsort((passed, -scores[passed]))[:n]].astype(np.int64)
    ranked = np.where(np.isnan(scores), -np.inf, scores)
    passed = np.flatnonzero(ranked >= np.partition(ranked, size - n)[size - n])  # ties at the edge too
    return passed[np.lexsort((passed, -ranked[passed]))[:n]].astype(np.int64)


def top_n(
    scores: np.ndarray, n: int, exclude: sp.csr_matrix | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the best ``n`` item indexes and scores per row, best first, skipping ``exclude``.

    ``exclude`` is a sparse matrix (its stored cells) or a boolean mask of the same shape (or one
    row for all). Excluded and non-finite items score ``-inf`` and sort last; callers drop them.
    Each row is ranked by ``best_of``, so ties go to the lower index, as everywhere else.
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
    idx = np.stack([best_of(row, n) for row in scores]) if len(scores) else np.zeros((0, n), np.int64)
    return idx.astype(np.int64), np.take_along_axis(scores, idx, axis=1)


class Recommender(ABC):
    """Fit on a user x item confidence matrix; score histories; find similar items."""

    kind: ClassVar[str]
    Params: ClassVar[type[Hyperparameters]] = NoParams  # the kind's hyperparameters, typed
    fold_in: ClassVar[str] = "native"
    devices: ClassVar[frozenset[str]] = frozenset({"cpu"})  # where ``fit`` can run

    def __init__(self, **params: Any) -> None:
        self.params = self.Params.build(self.kind, params)
        self.n_items = 0
        self.device = "cpu"

    def on_device(self, device: str) -> Recommender:
        """Fit on ``device`` (cpu or gpu) from now on; raise ModelError naming why it cannot.

        A GPU fit writes the same CPU arrays as a CPU fit: the artifact and the service do not change.
        """
        if device not in {"cpu", "gpu"}:
            raise ModelError(f"--device {device!r}: choose cpu or gpu")
        if device not in self.devices:
            gpu = sorted(k for k, c in _device_kinds().items() if device in c)
            raise ModelError(
                f"--device {device}: {self.kind} trains on the CPU only; {', '.join(gpu)} run on a GPU"
            )
        if device == "gpu" and not gpu_available():
            raise ModelError(
                "--device gpu: no CUDA GPU here (implicit.gpu.HAS_CUDA is false); "
                "train on the CPU, the default"
            )
        self.device = device
        return self

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

    def _inputs(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """Return the history as this model scores it."""
        return sp.csr_matrix(history, dtype=np.float32)

    def contributions(self, history: sp.csr_matrix, item_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Return each item of one history row and what it adds to ``item_idx``'s score."""
        row = self._inputs(history[0] if history.shape[0] > 1 else history)
        return row.indices.copy(), (row.data * self.influence(item_idx)[row.indices]).astype(np.float32)
