"""Cart models: fit on order baskets, score a cart sparsely, explain a suggestion.

Every cart model (``cart_base.CartModel``) learns a sparse item x item matrix ``W`` (at most
``neighbours`` cells per row: what item ``i`` in a cart says about item ``j``) and a per-item
``prior``, and scores a cart from its rows' cells. The kinds (counts ``c`` are weighted by recency
and order size, see ``cart_base``; ``s`` is ``shrinkage``; ``P(j)`` the weighted share of orders)::

    popular      W empty,                                  score = P(j)
    cooccurrence W = c(i, j),                   sum,       score = agg + 1e-9 P(j)
    confidence   W = c(i, j) / (c(i) + s),      max,       score = max(agg, P(j))
    noisy_or     W = -log(1 - c(i, j) / (c(i) + s)), sum,  score = 1 - (1 - P(j)) exp(-agg)
    cosine       W = c(i, j) / sqrt(c(i) c(j)), sum,       score = agg + 1e-9 P(j)
    ease         W = B of EASE on the order x item matrix (Gram weighted by recency, lambda), its
                 strongest ``neighbours`` per row; fitted on the ``max_items`` items in most orders
                 (the rest keep only their prior), so it stays within memory on any catalog.

The scores of ``popular``, ``confidence`` and ``noisy_or`` are probabilities; the others are
calibrated from the log of their score (see ``cart_base``). Models save as arrays plus
``cart.json``: never pickle.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from features.artifact import read_arrays, write_arrays
from features.errors import ArtifactError
from training.models.base import ModelError
from training.models.cart_base import (
    CartModel,
    CartParams,
    recency_weights,
    sigmoid,
    stored_cells,
    strongest,
)
from training.models.ease import dense_ease
from training.models.registry import Registry

__all__ = [
    "CART_KINDS",
    "CartModel",
    "create_cart_model",
    "load_cart_model",
    "recency_weights",
    "save_cart_model",
    "sigmoid",
    "stored_cells",
    "strongest",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfidenceParams(CartParams):
    """Association rules' shrinkage ``s``: a rule from a rarely bought item counts for less."""

    shrinkage: float = 1.0


@dataclass(frozen=True)
class NoisyOrParams(CartParams):
    """Noisy-or's shrinkage ``s`` of each cart item's chance."""

    shrinkage: float = 5.0


@dataclass(frozen=True)
class EaseCartParams(CartParams):
    """EASE on baskets: its L2 penalty and the most items it inverts."""

    regularization: float = 50.0
    max_items: int = 8_000


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
    Params = ConfidenceParams
    params: ConfidenceParams

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        scale = 1.0 / np.maximum(item_counts + self.params.shrinkage, 1e-12)
        return sp.csr_matrix(sp.diags(scale) @ counts)

    def finish(self, agg: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.maximum(agg, self.prior[items])


class NoisyOrCart(CartModel):
    """Each cart item is an independent chance to pull an item in, on top of its base rate."""

    kind = "noisy_or"
    probabilistic = True
    Params = NoisyOrParams
    params: NoisyOrParams

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        scale = 1.0 / np.maximum(item_counts + self.params.shrinkage, 1e-12)
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
    Params = EaseCartParams
    params: EaseCartParams

    def _learn(
        self, baskets: sp.csr_matrix, w: np.ndarray, counts: sp.csr_matrix, item_counts: np.ndarray
    ) -> sp.csr_matrix:
        n_items = baskets.shape[1]
        x = sp.csr_matrix(baskets, dtype=np.float64, copy=True)
        x.data[:] = 1.0
        orders = np.asarray(x.sum(axis=0)).ravel()
        limit = self.params.max_items
        chosen = np.sort(np.argsort(-orders, kind="stable")[:limit])
        chosen = chosen[orders[chosen] > 0]
        if len(chosen) < n_items:
            logger.info("ease on baskets: fitting the %d items in most orders of %d", len(chosen), n_items)
        xs = x[:, chosen]
        b = dense_ease(np.asarray((xs.T @ sp.diags(w) @ xs).toarray()), self.params.regularization)
        k = min(self.params.neighbours, max(len(chosen) - 1, 1))
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


CART_KINDS: Registry[CartModel] = Registry(
    "cart model", (PopularCart, CooccurrenceCart, ConfidenceCart, NoisyOrCart, CosineCart, EaseCart)
)
create_cart_model = CART_KINDS.create
CART_ARRAYS = {"weights": "weights.npz", "prior": "prior.npy"}  # what cart.json without "arrays" means


def save_cart_model(model: CartModel, directory: Path) -> None:
    """Write the cart model's arrays and ``cart.json`` (kind, parameters, items, calibration, files)."""
    files = write_arrays(Path(directory), model.arrays())
    meta = {
        "kind": model.kind,
        "params": model.params.as_dict(),
        "n_items": model.n_items,
        "calibration": list(model.calibration) if model.calibration is not None else None,
        "arrays": files,
    }
    (Path(directory) / "cart.json").write_text(json.dumps(meta, indent=2))


def load_cart_model(directory: Path) -> CartModel:
    """Read a cart model written by ``save_cart_model``; a missing or corrupt file raises ModelError."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "cart.json").read_text())
        model = create_cart_model(meta["kind"], **meta["params"])
        model.restore(read_arrays(directory, meta.get("arrays", CART_ARRAYS)))  # the kernels trust W
        calibration = meta.get("calibration")
        model.calibration = None if calibration is None else (float(calibration[0]), float(calibration[1]))
    except (OSError, KeyError, ValueError, TypeError, EOFError, ArtifactError) as exc:
        raise ModelError(f"{directory}: cannot load the cart model ({exc})") from exc
    if model.n_items != int(meta["n_items"]):
        raise ModelError(
            f"{directory}: cart model has {model.n_items} items, cart.json says {meta['n_items']}"
        )
    return model
