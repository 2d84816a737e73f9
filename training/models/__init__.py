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

from features.artifact import read_arrays, write_arrays
from features.errors import ArtifactError
from training.models.base import ModelError, OnEpoch, Recommender, best_of, gpu_available, top_n
from training.models.factors import ALSModel, BPRModel, LMFModel
from training.models.neighbours import BM25Model, ItemKNNModel, TFIDFModel
from training.models.registry import Registry
from training.models.simple import EaseModel, PopularModel

__all__ = [
    "MODEL_KINDS",
    "ModelError",
    "OnEpoch",
    "Recommender",
    "best_of",
    "create_model",
    "gpu_available",
    "load_model",
    "save_model",
    "top_n",
]

MODEL_KINDS: Registry[Recommender] = Registry(
    "model",
    (ALSModel, BPRModel, LMFModel, ItemKNNModel, BM25Model, TFIDFModel, PopularModel, EaseModel),
)
create_model = MODEL_KINDS.create


def save_model(model: Recommender, directory: Path) -> None:
    """Write the model's arrays and ``model.json`` (kind, parameters, items, array files)."""
    files = write_arrays(Path(directory), model.arrays())
    meta = {"kind": model.kind, "params": model.params.as_dict(), "n_items": model.n_items, "arrays": files}
    (Path(directory) / "model.json").write_text(json.dumps(meta, indent=2))


def load_model(directory: Path) -> Recommender:
    """Read a model written by ``save_model``; a missing or corrupt file raises ModelError."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "model.json").read_text())
        model = create_model(meta["kind"], **meta["params"])
        model.restore(read_arrays(directory, meta["arrays"]))
    except (OSError, KeyError, ValueError, TypeError, EOFError, ArtifactError) as exc:
        raise ModelError(f"{directory}: cannot load the model ({exc})") from exc
    if model.n_items != int(meta["n_items"]):
        raise ModelError(f"{directory}: model has {model.n_items} items, model.json says {meta['n_items']}")
    return model
