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
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from features.bundle import inside, read_csr
from features.errors import BundleError
from training.models.base import ModelError, OnEpoch, Recommender, best_of, top_n
from training.models.factors import ALSModel, BPRModel, LMFModel
from training.models.neighbours import BM25Model, ItemKNNModel, TFIDFModel
from training.models.simple import EaseModel, PopularModel

__all__ = [
    "MODEL_KINDS",
    "ModelError",
    "OnEpoch",
    "Recommender",
    "best_of",
    "create_model",
    "load_model",
    "save_model",
    "top_n",
]

MODEL_KINDS: dict[str, type[Recommender]] = {
    cls.kind: cls
    for cls in (
        ALSModel,
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
            path = inside(directory, file)
            arrays[name] = read_csr(path) if file.endswith(".npz") else np.load(path, allow_pickle=False)
        model.restore(arrays)
    except (OSError, KeyError, ValueError, TypeError, EOFError, BundleError) as exc:
        raise ModelError(f"{directory}: cannot load the model ({exc})") from exc
    if model.n_items != int(meta["n_items"]):
        raise ModelError(f"{directory}: model has {model.n_items} items, model.json says {meta['n_items']}")
    return model
