"""The training job: evaluate on a holdout beside the popularity baseline, refit on everything, bundle.

Protocol: the chosen model and ``popular`` are fitted on the train part of a split and scored
on the same held-out users in the same run; cross-sell is scored on held-out orders with the
co-purchase statistics of the train period. Then the model is refit on all the given events and
that refit is what the bundle holds (the manifest says so). No MLflow here: ``tracking`` logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.association import association_stats
from features.baskets import order_baskets, session_baskets
from features.bundle import file_sha256, save_bundle
from features.dataset import Dataset
from features.matrix import Weighting
from features.split import Split, chronological_split
from training.evaluate import DEFAULT_KS, build_holdout, crosssell_metrics, evaluate_model
from training.models import Recommender, create_model, save_model

__all__ = [
    "Evaluation",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "evaluate_split",
    "fingerprint",
    "item_prices",
    "run_training",
    "split_events",
]

logger = logging.getLogger(__name__)

#: Exponents g of price tried when ranking cross-sell by ``P x price**g`` (0 = P alone).
PRICE_EXPONENTS = (0.25, 0.5, 1.0)

OnStage = Callable[[str], None]
OnEpoch = Callable[[int, float | None], None]


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how to judge it."""

    model: str = "als"
    params: Mapping[str, Any] = field(default_factory=dict)
    weighting: Weighting = field(default_factory=Weighting)
    holdout: float | None = 0.2
    holdout_date: str | None = None
    ks: tuple[int, ...] = DEFAULT_KS
    min_pair_count: int = 2
    session_gap_minutes: float = 30.0
    crosssell_shrinkage: float = 5.0
    seed: int = 42

    @property
    def evaluates(self) -> bool:
        """Return whether a holdout is scored before the final fit."""
        return self.holdout is not None or self.holdout_date is not None

    def describe(self) -> dict[str, Any]:
        """Return the configuration as flat, JSON-ready values."""
        return {
            "model": self.model,
            "params": dict(self.params),
            "weights": dict(self.weighting.weights),
            "half_life_days": self.weighting.half_life_days,
            "quantity_scale": self.weighting.quantity_scale,
            "holdout": self.holdout if self.holdout_date is None else None,
            "holdout_date": self.holdout_date,
            "ks": list(self.ks),
            "min_pair_count": self.min_pair_count,
            "session_gap_minutes": self.session_gap_minutes,
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Evaluation:
    """Holdout figures for the model and the baseline, side by side."""

    split: dict[str, Any]
    model: dict[str, float]
    baseline: dict[str, float]
    crosssell: dict[str, float]
    crosssell_baseline: dict[str, float]
    crosssell_by_value: dict[str, dict[str, float]] = field(default_factory=dict)

    def price_exponent(self, k: int = 10) -> float:
        """Return the exponent g of price in ``P x price**g`` that won on held-out orders.

        g = 0 ranks by P alone; g = 1 by expected value. A variant is kept only if it beats P alone
        on both hit@k and revenue@k; among those the best revenue@k wins (ties: the smaller g).
        """
        hit, revenue = f"crosssell_hit_at_{k}", f"crosssell_revenue_at_{k}"
        best, best_revenue = 0.0, self.crosssell.get(revenue, 0.0)
        for exponent, figures in sorted(self.crosssell_by_value.items(), key=lambda kv: float(kv[0])):
            if (
                figures.get(hit, 0.0) >= self.crosssell.get(hit, 0.0)
                and figures.get(revenue, 0.0) > best_revenue
            ):
                best, best_revenue = float(exponent), figures[revenue]
        return best

    def flat(self) -> dict[str, float]:
        """Return every figure under one name: model metrics bare, the baseline's prefixed."""
        out = {**self.model, **self.crosssell}
        out |= {f"baseline_{k}": v for k, v in {**self.baseline, **self.crosssell_baseline}.items()}
        for exponent, figures in self.crosssell_by_value.items():
            out |= {f"price{exponent}_{k}": v for k, v in figures.items()}
        return out


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    bundle: Path
    manifest: dict[str, Any]
    evaluation: Evaluation | None
    epochs: list[tuple[int, float | None]]
    fit_seconds: float


def fingerprint(*paths: Path | None) -> str:
    """Return the sha256 of the input files (concatenated digests when several)."""
    digests = [file_sha256(p) for p in paths if p is not None]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def split_events(events: pd.DataFrame, config: TrainConfig) -> Split:
    """Split chronologically by date or by the latest fraction of events."""
    if config.holdout_date is not None:
        return chronological_split(events, cutoff=config.holdout_date)
    return chronological_split(events, test_fraction=config.holdout)


def evaluate(
    dataset: Dataset, config: TrainConfig, on_stage: OnStage, on_epoch: OnEpoch | None
) -> Evaluation:
    """Split the dataset as configured and score the model and the baseline on the holdout."""
    split = split_events(dataset.events, config)
    return evaluate_split(split, item_prices(dataset), config, on_stage, on_epoch)


def item_prices(dataset: Dataset) -> pd.Series:
    """Return each item's price by item id (catalog first, else the median paid)."""
    meta = dataset.interactions.item_meta
    return pd.Series(meta["price"].to_numpy(dtype=np.float64), index=meta["item_id"].astype(str))


def evaluate_split(
    split: Split, prices: pd.Series, config: TrainConfig, on_stage: OnStage, on_epoch: OnEpoch | None
) -> Evaluation:
    """Fit the model and the baseline on ``split.train`` and score both on ``split.test``."""
    holdout = build_holdout(split, config.weighting)
    on_stage(f"fitting {config.model} on the train split")
    model = create_model(config.model, **config.params)
    model.fit(holdout.train, on_epoch)
    baseline = create_model("popular")
    baseline.fit(holdout.train)
    on_stage("scoring the holdout")
    figures = evaluate_model(model, holdout, config.ks)
    base_figures = evaluate_model(baseline, holdout, config.ks)
    on_stage("scoring cross-sell on held-out orders")
    train_orders = order_baskets(split.train, holdout.users, holdout.items)
    assoc = association_stats(train_orders, min_count=config.min_pair_count)
    test_baskets = order_baskets(split.test, holdout.users, holdout.items).at_least(2)
    per_item = prices.reindex(holdout.items.ids).to_numpy(dtype=np.float64)
    popularity = np.asarray(holdout.train.getnnz(axis=0), dtype=np.float64)

    def cart_scores(carts: sp.csr_matrix) -> np.ndarray:
        return assoc.cart_probability(carts, config.crosssell_shrinkage)

    def popular_scores(carts: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(popularity, (carts.shape[0], len(popularity))).copy()

    cross = crosssell_metrics(cart_scores, test_baskets, per_item, config.ks, seed=config.seed)

    cross_base = crosssell_metrics(popular_scores, test_baskets, per_item, config.ks, seed=config.seed)
    price = np.nan_to_num(per_item, nan=0.0)
    by_value = {}
    for exponent in PRICE_EXPONENTS:

        def value_scores(carts: sp.csr_matrix, g: float = exponent) -> np.ndarray:
            return cart_scores(carts) * np.power(price, g)[None, :]

        by_value[str(exponent)] = crosssell_metrics(
            value_scores, test_baskets, per_item, config.ks, seed=config.seed
        )
    return Evaluation(split.report(), figures, base_figures, cross, cross_base, by_value)


def _versions() -> dict[str, str]:
    names = ("orderlift", "implicit", "numpy", "scipy", "pandas", "pyarrow")
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def run_training(
    dataset: Dataset,
    config: TrainConfig,
    out: Path,
    data: Mapping[str, Any],
    on_stage: OnStage = lambda _: None,
    on_epoch: OnEpoch | None = None,
    evaluation: Evaluation | None = None,
    extra: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Evaluate (unless the holdout is off or ``evaluation`` is given), refit on all events, bundle.

    ``data`` describes the input (paths, fingerprint, mapping, validation report) for the manifest;
    ``extra`` adds entries to it (a sweep's trials, for example).
    """
    if evaluation is None and config.evaluates:
        evaluation = evaluate(dataset, config, on_stage, None)
    inter = dataset.interactions
    on_stage(f"fitting {config.model} on all {inter.matrix.nnz:,} interactions")
    epochs: list[tuple[int, float | None]] = []

    def record(epoch: int, value: float | None) -> None:
        epochs.append((epoch, value))
        if on_epoch is not None:
            on_epoch(epoch, value)

    model: Recommender = create_model(config.model, **config.params)
    began = time.perf_counter()
    model.fit(inter.matrix, record)
    fit_seconds = time.perf_counter() - began
    on_stage("computing co-purchase and co-view statistics")
    orders = order_baskets(dataset.events, inter.users, inter.items)
    copurchase = association_stats(orders, min_count=config.min_pair_count)
    sessions = session_baskets(dataset.events, inter.users, inter.items, config.session_gap_minutes)
    coview = association_stats(sessions, min_count=config.min_pair_count) if len(sessions) else None
    popularity = np.asarray(inter.matrix.getnnz(axis=0), dtype=np.float32)
    manifest = {
        "model": {"kind": model.kind, "params": model.params, "fold_in": model.fold_in},
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_on": "all events given (refit after evaluation)" if evaluation else "all events given",
        "data": dict(data),
        "config": config.describe(),
        "split": evaluation.split if evaluation else None,
        "metrics": asdict(evaluation) if evaluation else {},
        "crosssell": {
            "price_exponent": evaluation.price_exponent() if evaluation else 0.0,
            "shrinkage": config.crosssell_shrinkage,
        },
        "fit_seconds": round(fit_seconds, 3),
        "versions": _versions(),
        **(extra or {}),
    }
    on_stage(f"writing the bundle to {out}")
    save_bundle(
        out,
        manifest=manifest,
        users=inter.users,
        items=inter.items,
        history=inter.matrix,
        item_meta=inter.item_meta,
        popularity=popularity,
        copurchase=copurchase,
        coview=coview,
        orders=orders.matrix,
        write_model=lambda directory: save_model(model, directory),
    )
    full = json.loads((Path(out) / "manifest.json").read_text())
    return TrainResult(out, full, evaluation, epochs, fit_seconds)
