"""The training job: evaluate on a holdout beside the baselines, refit on everything, write the artifact.

Protocol: the chosen model and ``popular`` are fitted on the train part of a split and scored
on the same held-out users in the same run. Cart models are tuned on a validation cut of the train
period and every kind is scored once on the orders after the cutoff, through the serving ranker
(``training.crosssell``). Then the model and the chosen cart model are refit on all the given
events and orders (anonymous orders included), and those refits are what the model artifact holds
(the manifest says so). No MLflow here: ``tracking`` logs.
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.artifact import file_sha256, save_artifact
from features.association import association_stats
from features.baskets import Baskets, order_baskets, session_baskets
from features.columns import timestamp_ns
from features.dataset import Dataset
from features.kpis import PERIODS, history_kpis
from features.manifest import CartSpec, Manifest, ModelSpec
from features.matrix import Weighting, build_matrix, dismissed_pairs
from features.reorder import reorder_history
from features.split import Split, chronological_split
from features.trending import daily_counts
from training.crosssell import CART_CANDIDATES, CartData, CartEvaluation, choose_cart_model
from training.evaluate import DEFAULT_KS, build_holdout, evaluate_model
from training.models import Recommender, create_model, save_model
from training.models.cart import CartModel, create_cart_model, save_cart_model
from training.models.cart_ranking import substitute_matrix

__all__ = [
    "DEFAULT_CART",
    "Evaluation",
    "TrainConfig",
    "TrainResult",
    "cart_data",
    "evaluate",
    "evaluate_split",
    "fingerprint",
    "item_prices",
    "run_training",
    "split_events",
]


#: The cart model an artifact holds when nothing is evaluated (no holdout): the strongest on held-out
#: orders of Online Retail and of the synthetic store, with a small buy-again weight for known customers.
DEFAULT_CART = CartSpec("ease", blend={"buy_again": 0.1, "personal": 0.0})

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
    cart_models: tuple[str, ...] = CART_CANDIDATES
    validation_fraction: float = 0.2
    max_eval_carts: int = 3000
    seed: int = 42
    device: str = "cpu"
    #: ``local``, or ``spark``: ALS fits in the running Spark session (MLlib); the artifact is the same.
    engine: str = "local"

    def new_model(self) -> Recommender:
        """Return the configured model, unfitted, set to fit on ``device`` (or in Spark)."""
        if self.engine == "spark" and self.model == "als":
            from training.spark.als import SparkALSModel

            return SparkALSModel(**self.params)
        return create_model(self.model, **self.params).on_device(self.device)

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
            "dismissals": self.weighting.dismissals,
            "holdout": self.holdout if self.holdout_date is None else None,
            "holdout_date": self.holdout_date,
            "ks": list(self.ks),
            "min_pair_count": self.min_pair_count,
            "session_gap_minutes": self.session_gap_minutes,
            "cart_models": list(self.cart_models),
            "validation_fraction": self.validation_fraction,
            "max_eval_carts": self.max_eval_carts,
            "seed": self.seed,
            "device": self.device,
            "engine": self.engine,
        }


@dataclass(frozen=True)
class Evaluation:
    """Holdout figures for the model and the baseline side by side, and the cart models' comparison."""

    split: dict[str, Any]
    model: dict[str, float]
    baseline: dict[str, float]
    cart: CartEvaluation | None = None

    @property
    def crosssell(self) -> dict[str, float]:
        """Return the chosen cart model's test figures."""
        return dict(self.cart.test[self.cart.chosen.kind]) if self.cart is not None else {}

    @property
    def crosssell_baseline(self) -> dict[str, float]:
        """Return the popular cart's test figures (the floor)."""
        return dict(self.cart.test.get("popular", {})) if self.cart is not None else {}

    def flat(self) -> dict[str, float]:
        """Return every figure under one name: model metrics bare, the baseline's prefixed."""
        out = {**self.model, **self.crosssell}
        out |= {f"baseline_{k}": v for k, v in {**self.baseline, **self.crosssell_baseline}.items()}
        if self.cart is not None:
            out |= self.cart.flat()
        return out

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready summary for the manifest."""
        return {
            "split": self.split,
            "model": self.model,
            "baseline": self.baseline,
            "crosssell": self.cart.describe() if self.cart is not None else None,
        }


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    artifact: Path
    manifest: Manifest
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
    return evaluate_split(dataset, split_events(dataset.events, config), config, on_stage, on_epoch)


def item_prices(dataset: Dataset) -> pd.Series:
    """Return each item's price by item id (catalog first, else the median paid)."""
    meta = dataset.interactions.item_meta
    return pd.Series(meta["price"].to_numpy(dtype=np.float64), index=meta["item_id"].astype(str))


def all_orders(dataset: Dataset) -> Baskets:
    """Return every order as a basket over the dataset's index, anonymous ones included (user -1)."""
    inter = dataset.interactions
    return order_baskets(dataset.events, inter.users, inter.items, dataset.anonymous)


def cart_data(dataset: Dataset, config: TrainConfig, before: pd.Timestamp | None = None) -> CartData:
    """Return what cart models fit and are judged on; substitutes from the sessions before ``before``."""
    inter, events = dataset.interactions, dataset.events
    meta = inter.item_meta
    ts = timestamp_ns(events["timestamp"])
    known = events if before is None else events[ts < before.value]
    orders = all_orders(dataset)
    sessions = session_baskets(known, inter.users, inter.items, config.session_gap_minutes)
    copurchase = association_stats(order_baskets(known, inter.users, inter.items), config.min_pair_count)
    coview = association_stats(sessions, min_count=config.min_pair_count) if len(sessions) else None
    substitutes = substitute_matrix(
        None if coview is None else coview.pair_counts,
        copurchase.pair_counts,
        meta["category"].fillna("").astype(str).to_numpy(),
    )

    def history(cut: int) -> sp.csr_matrix:
        return build_matrix(events[ts < cut], inter.users, inter.items, config.weighting)

    def user_model(matrix: sp.csr_matrix) -> Recommender:
        model = config.new_model()
        model.fit(matrix)
        return model

    return CartData(
        orders,
        meta["price"].to_numpy(dtype=np.float64),
        meta["in_stock"].to_numpy(dtype=bool),
        substitutes,
        history,
        user_model,
    )


def evaluate_split(
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    on_stage: OnStage,
    on_epoch: OnEpoch | None,
    carts: bool = True,
) -> Evaluation:
    """Fit the model and the baseline on ``split.train`` and score both on ``split.test``.

    With ``carts``, every cart model is also tuned on a validation cut of the train period and
    scored once on the orders from the split's cutoff on (``training.crosssell``).
    """
    holdout = build_holdout(split, config.weighting)
    on_stage(f"fitting {config.model} on the train split")
    model = config.new_model()
    model.fit(holdout.train, on_epoch)
    baseline = create_model("popular")
    baseline.fit(holdout.train)
    on_stage("scoring the holdout")
    figures = evaluate_model(model, holdout, config.ks)
    base_figures = evaluate_model(baseline, holdout, config.ks)
    cart = None
    if carts and split.cutoff is not None:
        cart = choose_cart_model(
            cart_data(dataset, config, split.cutoff),
            split.cutoff,
            validation_fraction=config.validation_fraction,
            ks=config.ks,
            kinds=config.cart_models,
            seed=config.seed,
            max_carts=config.max_eval_carts,
            on_stage=on_stage,
        )
    return Evaluation(split.report(), figures, base_figures, cart)


def chosen_cart(evaluation: Evaluation | None) -> CartSpec:
    """Return the cart model the artifact holds: the one chosen on validation, else ``DEFAULT_CART``."""
    if evaluation is None or evaluation.cart is None:
        return DEFAULT_CART
    return evaluation.cart.spec()


def fit_cart(orders: Baskets, spec: CartSpec) -> CartModel:
    """Fit the cart model ``spec`` describes on ``orders`` (every order, anonymous ones included)."""
    model = create_cart_model(spec.kind, **spec.params)
    model.fit(orders.matrix, orders.timestamp)
    model.calibration = spec.calibration
    return model


def _versions() -> dict[str, str]:
    names = ("orderlift", "implicit", "numpy", "scipy", "pandas", "pyarrow")
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _fit(config: TrainConfig, matrix: Any, on_epoch: OnEpoch) -> tuple[Recommender, float]:
    """Fit the configured model on ``matrix``; return it and the seconds it took."""
    model = config.new_model()
    began = time.perf_counter()
    model.fit(matrix, on_epoch)
    return model, time.perf_counter() - began


def _manifest(
    model: Recommender,
    config: TrainConfig,
    data: Mapping[str, Any],
    evaluation: Evaluation | None,
    cart: CartSpec,
    fit_seconds: float,
    extra: Mapping[str, Any] | None,
) -> Manifest:
    """Return the artifact's manifest (``save_artifact`` adds the files, counts and id)."""
    return Manifest(
        model=ModelSpec(model.kind, model.params.as_dict(), model.fold_in),
        crosssell=cart,
        weights=dict(config.weighting.weights),
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        record={
            "trained_on": "all events given (refit after evaluation)" if evaluation else "all events given",
            "data": dict(data),
            "config": config.describe(),
            "split": evaluation.split if evaluation else None,
            "metrics": evaluation.describe() if evaluation else {},
            "fit_seconds": round(fit_seconds, 3),
            "versions": _versions(),
            **(extra or {}),
        },
    )


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
    """Evaluate (unless the holdout is off or ``evaluation`` is given), refit on all events, write.

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

    model, fit_seconds = _fit(config, inter.matrix, record)
    on_stage("computing co-purchase and co-view statistics")
    orders = all_orders(dataset)
    copurchase = dataset.copurchase
    if copurchase is None:  # the Spark engine counted them while loading
        copurchase = association_stats(orders, min_count=config.min_pair_count)
    sessions = session_baskets(dataset.events, inter.users, inter.items, config.session_gap_minutes)
    coview = association_stats(sessions, min_count=config.min_pair_count) if len(sessions) else None
    popularity = np.asarray(inter.matrix.getnnz(axis=0), dtype=np.float32)
    spec = chosen_cart(evaluation)
    on_stage(f"fitting the {spec.kind} cart model on all {len(orders):,} orders")
    cart = fit_cart(orders, spec)
    manifest = _manifest(model, config, data, evaluation, spec, fit_seconds, extra)
    on_stage("counting the shop's KPIs per week and month")
    shop = history_kpis(dataset.events, dataset.anonymous, dataset.catalog)
    on_stage(f"writing the model artifact to {out}")
    written = save_artifact(
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
        trend=daily_counts(dataset.events, inter.items),
        dismissed=dismissed_pairs(dataset.events, inter.users, inter.items),
        kpis={by: shop.series(by) for by in PERIODS},
        reorder=reorder_history(dataset.events, inter.users, inter.items),
        write_model=lambda directory: save_model(model, directory),
        write_cart=lambda directory: save_cart_model(cart, directory),
    )
    return TrainResult(out, written, evaluation, epochs, fit_seconds)
