"""Cart models: fit on order baskets, score a cart sparsely, explain a suggestion.

Every cart model learns a sparse item x item matrix ``W`` (at most ``neighbours`` cells per row:
what item ``i`` in a cart says about item ``j``) and a per-item ``prior``. For a cart ``C``::

    agg_j   = sum_{i in C} W[i, j]      or  max_{i in C} W[i, j]     (the model's ``aggregate``)
    score_j = finish(agg_j)             for items touched by a cart row's stored cells
    score_j = idle_j = finish(0)        for every other item

so an untouched item scores by its prior alone, and a cart's ranking needs only its rows' cells.
The kinds (counts ``c`` are recency-weighted: an order ``d`` days older than the newest weighs
``0.5 ** (d / half_life_days)``, times ``size ** -size_power`` for an order of ``size`` lines;
``s`` is ``shrinkage``; ``P(j)`` the weighted share of orders)::

    popular      W empty,                                  score = P(j)
    cooccurrence W = c(i, j),                   sum,       score = agg + 1e-9 P(j)
    confidence   W = c(i, j) / (c(i) + s),      max,       score = max(agg, P(j))
    noisy_or     W = log(1 - c(i, j) / (c(i) + s)), sum,   score = 1 - (1 - P(j)) exp(agg)
    cosine       W = c(i, j) / sqrt(c(i) c(j)), sum,       score = agg + 1e-9 P(j)
    ease         W = B of EASE on the order x item matrix (Gram weighted by recency, lambda), its
                 strongest ``neighbours`` per row; fitted on the ``max_items`` items in most orders
                 (the rest keep only their prior), so it stays within memory on any catalog.

``calibration`` maps a score to ``P(j is added | cart) = sigmoid(a x + b)``, with
``x = logit(score)`` for the kinds whose scores are probabilities (``popular``, ``confidence``,
``noisy_or``) and ``x = log(score + floor)`` for the others (``floor``: 1% of the median cell of
``W``). ``(a, b)`` is fitted on validation carts; without it ``(1, 0)`` applies. Models save as
arrays plus ``cart.json``: never pickle.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from training.models.base import ModelError

__all__ = [
    "CART_KINDS",
    "CartModel",
    "create_cart_model",
    "load_cart_model",
    "recency_weights",
    "save_cart_model",
    "stored_cells",
    "strongest",
]

logger = logging.getLogger(__name__)

_TIE = 1e-9  # a prior this small only breaks ties among items a cart says nothing about
_DAY_NS = 86_400 * 10**9


def recency_weights(timestamps: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """Return each order's weight ``0.5 ** (age / half_life)``, age counted from the newest order."""
    ts = np.asarray(timestamps, dtype=np.int64)
    if half_life_days is None or not len(ts):
        return np.ones(len(ts), dtype=np.float64)
    age_days = (ts.max() - ts) / _DAY_NS
    return np.power(0.5, age_days / float(half_life_days))


def strongest(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Return ``matrix`` with only the ``k`` largest stored values of each row (ties: lower column)."""
    m = sp.csr_matrix(matrix, copy=True)
    m.sum_duplicates()
    lengths = np.diff(m.indptr)
    if not m.nnz or lengths.max() <= k:
        return m
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(m.nnz) - np.repeat(m.indptr[:-1], lengths)
    keep = np.zeros(m.nnz, dtype=bool)
    keep[order[rank < k]] = True
    out = sp.csr_matrix((m.data[keep], m.indices[keep], np.r_[0, np.cumsum(np.minimum(lengths, k))]), m.shape)
    out.sort_indices()
    return out


def stored_cells(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for every stored cell of ``rows``, its position in ``rows`` and its index into ``data``."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    which = np.repeat(np.arange(len(rows)), lengths)
    first = np.cumsum(lengths) - lengths
    return which, np.arange(int(lengths.sum())) + (starts - first)[which]


def _weighted_counts(
    baskets: sp.csr_matrix, weights: np.ndarray, min_count: int
) -> tuple[sp.csr_matrix, np.ndarray, int]:
    """Return weighted pair counts (zero diagonal, pairs in fewer than ``min_count`` orders dropped)."""
    x = sp.csr_matrix(baskets, dtype=np.float64, copy=True)
    x.data[:] = 1.0
    w = np.asarray(weights, dtype=np.float64)
    pairs = sp.csr_matrix(x.T @ x)
    weighted = sp.csr_matrix(x.T @ sp.diags(w) @ x)
    weighted.sort_indices()
    pairs.sort_indices()
    if not np.array_equal(pairs.indices, weighted.indices):
        raise ModelError("weighted and plain pair counts must share their cells")
    keep = pairs.data >= min_count
    rows = np.repeat(np.arange(pairs.shape[0]), np.diff(pairs.indptr))
    keep &= rows != pairs.indices
    out = sp.csr_matrix((weighted.data[keep], (rows[keep], pairs.indices[keep])), shape=pairs.shape)
    item_counts = np.asarray(x.T @ w).ravel()
    return out, item_counts, int(x.shape[0])


class CartModel(ABC):
    """Learn ``W`` and a prior from order baskets; score carts from their rows' stored cells."""

    kind: ClassVar[str]
    aggregate: ClassVar[Literal["sum", "max"]] = "sum"
    probabilistic: ClassVar[bool] = False  # scores are already probabilities
    defaults: ClassVar[dict[str, Any]] = {}
    _common: ClassVar[dict[str, Any]] = {
        "neighbours": 200,
        "half_life_days": None,
        "min_count": 2,
        "size_power": 0.0,
    }

    def __init__(self, **params: Any) -> None:
        known = {**self._common, **self.defaults}
        unknown = set(params) - set(known)
        if unknown:
            raise ModelError(
                f"cart model {self.kind} has no parameter {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        self.params: dict[str, Any] = {**known, **params}
        self.weights = sp.csr_matrix((0, 0), dtype=np.float32)
        self.prior = np.zeros(0)
        self.calibration: tuple[float, float] | None = None

    @property
    def n_items(self) -> int:
        """Return the number of items."""
        return len(self.prior)

    def fit(self, baskets: sp.csr_matrix, timestamps: np.ndarray) -> None:
        """Learn from orders x items (binary) with each order's timestamp (int64 ns)."""
        w = recency_weights(timestamps, self.params["half_life_days"])
        sizes = np.maximum(np.diff(sp.csr_matrix(baskets).indptr), 1)
        w = w * np.power(sizes.astype(np.float64), -float(self.params["size_power"]))
        counts, item_counts, _ = _weighted_counts(baskets, w, int(self.params["min_count"]))
        total = max(float(w.sum()), 1e-12)
        self.prior = item_counts / total
        learned = self._learn(sp.csr_matrix(baskets), w, counts, item_counts)
        self.weights = strongest(learned, int(self.params["neighbours"])).astype(np.float32)
        self.weights.sort_indices()
        self.calibration = None

    @abstractmethod
    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        """Return ``W`` before pruning to the strongest neighbours."""

    def finish(self, agg: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Return the score of ``items`` from their aggregated cells (sum models add a tie prior)."""
        return agg + _TIE * self.prior[items]

    @property
    def idle(self) -> np.ndarray:
        """Return every item's score when no cart row touches it."""
        return self.finish(np.zeros(self.n_items), np.arange(self.n_items))

    def cells(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return, for every stored cell of ``rows``, its position in ``rows`` and its index into ``W``."""
        return stored_cells(self.weights, rows)

    def score_cart(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return the touched items (sorted), their scores, and the cart's cells (``which``, ``cells``)."""
        which, cells = self.cells(rows)
        cols = self.weights.indices[cells]
        candidates, slot = np.unique(cols, return_inverse=True)
        values = self.weights.data[cells].astype(np.float64)
        if self.aggregate == "sum":
            agg = np.bincount(slot, weights=values, minlength=len(candidates))
        else:
            agg = np.full(len(candidates), -np.inf)
            np.maximum.at(agg, slot, values)
        return candidates, self.finish(agg, candidates), which, cells

    def score_dense(self, rows: np.ndarray) -> np.ndarray:
        """Return every item's score for a cart (dense): idle scores, overwritten where touched."""
        out = self.idle.copy()
        candidates, scores, _, _ = self.score_cart(rows)
        out[candidates] = scores
        return out

    def feature(self, scores: np.ndarray) -> np.ndarray:
        """Return the monotone transform of scores that calibration is linear in."""
        s = np.asarray(scores, dtype=np.float64)
        if self.probabilistic:
            p = np.clip(s, 1e-9, 1.0 - 1e-9)
            return np.log(p) - np.log1p(-p)
        return np.log(np.maximum(s, 0.0) + self.floor)

    @property
    def floor(self) -> float:
        """Return the score below which calibration stops telling items apart: 1% of a typical cell."""
        data = self.weights.data
        return float(0.01 * np.median(np.abs(data))) if len(data) else 1e-12

    def logit(self, scores: np.ndarray) -> np.ndarray:
        """Return the calibrated log-odds of the item being added: ``a x feature + b``."""
        a, b = self.calibration if self.calibration is not None else (1.0, 0.0)
        return a * self.feature(scores) + b

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """Return calibrated P(item is added | cart) for scores."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(scores), -50.0, 50.0)))

    def arrays(self) -> dict[str, np.ndarray | sp.csr_matrix]:
        """Return the learned state to save."""
        return {"weights": self.weights, "prior": self.prior}

    def restore(self, arrays: Mapping[str, np.ndarray | sp.csr_matrix]) -> None:
        """Set the learned state from saved arrays."""
        self.prior = np.asarray(arrays["prior"], dtype=np.float64)
        self.weights = sp.csr_matrix(arrays["weights"], dtype=np.float32)
        self.weights.sort_indices()
        if self.weights.shape != (self.n_items, self.n_items):
            raise ModelError(f"cart weights {self.weights.shape} do not match {self.n_items} items")


class PopularCart(CartModel):
    """Suggest the most ordered items, whatever the cart holds: the floor every model must beat."""

    kind = "popular"
    probabilistic = True
    aggregate = "max"

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        return sp.csr_matrix(counts.shape, dtype=np.float64)

    def finish(self, agg: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.prior[items].astype(np.float64)


class CooccurrenceCart(CartModel):
    """Rank by how often each item was bought with the cart's items, summed."""

    kind = "cooccurrence"

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        return counts


class ConfidenceCart(CartModel):
    """Association rules: the best confidence c(i, j) / (c(i) + s) over the cart's items."""

    kind = "confidence"
    probabilistic = True
    aggregate = "max"
    defaults: ClassVar[dict[str, Any]] = {"shrinkage": 1.0}

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        scale = 1.0 / np.maximum(item_counts + float(self.params["shrinkage"]), 1e-12)
        return sp.csr_matrix(sp.diags(scale) @ counts)

    def finish(self, agg: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.maximum(agg, self.prior[items])


class NoisyOrCart(CartModel):
    """Each cart item is an independent chance to pull an item in, on top of its base rate."""

    kind = "noisy_or"
    probabilistic = True
    defaults: ClassVar[dict[str, Any]] = {"shrinkage": 5.0}

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        scale = 1.0 / np.maximum(item_counts + float(self.params["shrinkage"]), 1e-12)
        shrunk = sp.csr_matrix(sp.diags(scale) @ counts)
        shrunk.data = -np.log1p(-np.minimum(shrunk.data, 1.0 - 1e-6))  # stored positive: strongest first
        return shrunk

    def finish(self, agg: np.ndarray, items: np.ndarray) -> np.ndarray:
        return 1.0 - (1.0 - self.prior[items]) * np.exp(-agg)


class CosineCart(CartModel):
    """Item-item cosine of the order vectors, summed over the cart's items."""

    kind = "cosine"

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        norm = 1.0 / np.sqrt(np.maximum(item_counts, 1e-12))
        return sp.csr_matrix(sp.diags(norm) @ counts @ sp.diags(norm))


class EaseCart(CartModel):
    """EASE on order baskets (Steck 2019), on the items in most orders; served as its strongest cells."""

    kind = "ease"
    defaults: ClassVar[dict[str, Any]] = {"regularization": 50.0, "max_items": 8_000}

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        n_items = baskets.shape[1]
        x = sp.csr_matrix(baskets, dtype=np.float64, copy=True)
        x.data[:] = 1.0
        orders = np.asarray(x.sum(axis=0)).ravel()
        limit = int(self.params["max_items"])
        chosen = np.sort(np.argsort(-orders, kind="stable")[:limit])
        chosen = chosen[orders[chosen] > 0]
        if len(chosen) < n_items:
            logger.info("ease on baskets: fitting the %d items in most orders of %d", len(chosen), n_items)
        xs = x[:, chosen]
        gram = np.asarray((xs.T @ sp.diags(w) @ xs).toarray())
        gram[np.diag_indices(len(chosen))] += float(self.params["regularization"])
        p = np.linalg.inv(gram)
        del gram
        b = p / (-np.diag(p))
        del p
        b[np.diag_indices(len(chosen))] = 0.0
        k = min(int(self.params["neighbours"]), max(len(chosen) - 1, 1))
        top = (
            np.argpartition(-b, k - 1, axis=1)[:, :k]
            if len(chosen) > k
            else np.tile(np.arange(len(chosen)), (len(chosen), 1))
        )
        values = np.take_along_axis(b, top, axis=1)
        rows = np.repeat(chosen, top.shape[1])
        keep = values.ravel() > 0
        cols = chosen[top.ravel()]
        return sp.csr_matrix((values.ravel()[keep], (rows[keep], cols[keep])), shape=(n_items, n_items))


CART_KINDS: dict[str, type[CartModel]] = {
    cls.kind: cls
    for cls in (PopularCart, CooccurrenceCart, ConfidenceCart, NoisyOrCart, CosineCart, EaseCart)
}


def create_cart_model(kind: str, **params: Any) -> CartModel:
    """Return an unfitted cart model of ``kind`` with ``params`` over its defaults."""
    if kind not in CART_KINDS:
        raise ModelError(f"unknown cart model {kind!r}; choose one of {', '.join(CART_KINDS)}")
    return CART_KINDS[kind](**params)


def save_cart_model(model: CartModel, directory: Path) -> None:
    """Write ``cart.json``, ``weights.npz`` and ``prior.npy``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sp.save_npz(directory / "weights.npz", sp.csr_matrix(model.weights), compressed=False)
    np.save(directory / "prior.npy", np.asarray(model.prior), allow_pickle=False)
    meta = {
        "kind": model.kind,
        "params": model.params,
        "n_items": model.n_items,
        "calibration": list(model.calibration) if model.calibration is not None else None,
    }
    (directory / "cart.json").write_text(json.dumps(meta, indent=2, default=str))


def load_cart_model(directory: Path) -> CartModel:
    """Read a cart model written by ``save_cart_model``; a missing or corrupt file raises ModelError."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "cart.json").read_text())
        model = create_cart_model(meta["kind"], **meta["params"])
        model.restore(
            {
                "weights": sp.load_npz(directory / "weights.npz").tocsr(),
                "prior": np.load(directory / "prior.npy", allow_pickle=False),
            }
        )
        calibration = meta.get("calibration")
        model.calibration = None if calibration is None else (float(calibration[0]), float(calibration[1]))
    except (OSError, KeyError, ValueError, TypeError, EOFError) as exc:
        raise ModelError(f"{directory}: cannot load the cart model ({exc})") from exc
    if model.n_items != int(meta["n_items"]):
        raise ModelError(
            f"{directory}: cart model has {model.n_items} items, cart.json says {meta['n_items']}"
        )
    return model
