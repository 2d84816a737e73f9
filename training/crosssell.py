"""Cross-sell evaluation and choice: held-out orders ranked by the serving ranker, baselines beside.

Protocol. Orders (identified and anonymous) are split by time: ``test`` holds the orders at or
after the evaluation cutoff; ``validation`` the latest ``validation_fraction`` of the orders before
it; the cart models are fitted on the orders before the validation cut to choose, and on every
order before the cutoff to test. Carts are held out of the orders and ranked through the serving
ranker by ``training.heldout`` (same candidates, stock and substitutes rules, tie order).

Choice, on validation only: for each cart model kind, the recency half-life, then the order-size
damping, then its key parameter, then the price exponent ``g`` of ``P x price ** g`` (each by
hit@10 + revenue@10), with
``P`` calibrated on the same validation carts (``fit_calibration``); the best kind wins. For
returning customers (orders whose customer has history before the cut) the blend weights of
``Blend`` are chosen on validation the same way. The test split is then scored once, for every
kind at its own validated settings, for all carts and for returning customers' carts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.baskets import Baskets
from features.manifest import CartSpec
from training.errors import OptionError
from training.heldout import Boosts, HeldOut, fit_calibration, hold_out, score_carts
from training.models import Recommender
from training.models.cart import CartModel, create_cart_model
from training.models.cart_ranking import Blend, CartRanker

__all__ = [
    "CART_CANDIDATES",
    "CartChoice",
    "CartData",
    "CartEvaluation",
    "choose_cart_model",
]

logger = logging.getLogger(__name__)

#: Kinds compared on every run; each is tuned on validation and scored on test beside the others.
CART_CANDIDATES: tuple[str, ...] = ("popular", "cooccurrence", "confidence", "noisy_or", "cosine", "ease")
HALF_LIVES: tuple[float | None, ...] = (None, 30.0, 90.0, 365.0)
KEY_PARAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "confidence": ("shrinkage", (0.0, 1.0, 5.0)),
    "noisy_or": ("shrinkage", (1.0, 5.0, 20.0)),
    "ease": ("regularization", (10.0, 50.0, 200.0)),
}
#: Orders weigh ``size ** -size_power``: wholesale carts of hundreds of lines would swamp the pairs.
SIZE_POWERS: tuple[float, ...] = (0.0, 0.5, 1.0)
PRICE_EXPONENTS: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
BUY_AGAIN: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)  # tried first, without the per-user model
PERSONAL: tuple[float, ...] = (0.25, 0.5)  # then with the chosen buy-again weight
_NAN = float("nan")


@dataclass(frozen=True)
class CartData:
    """What cart models are fitted and judged on, over one item index."""

    orders: Baskets  # identified and anonymous orders, user_idx -1 when anonymous
    price: np.ndarray
    in_stock: np.ndarray
    substitutes: sp.csr_matrix
    history: Callable[[int], sp.csr_matrix]  # customers' histories of the orders before a time (ns)
    user_model: Callable[[sp.csr_matrix], Recommender]  # a per-user model fitted on a history

    def before(self, cut: int) -> Baskets:
        """Return the orders strictly before ``cut`` (int64 ns)."""
        return _select(self.orders, self.orders.timestamp < cut)

    def between(self, start: int, end: int | None) -> Baskets:
        """Return the orders at or after ``start`` and before ``end``."""
        keep = self.orders.timestamp >= start
        if end is not None:
            keep &= self.orders.timestamp < end
        return _select(self.orders, keep)


def _select(baskets: Baskets, keep: np.ndarray) -> Baskets:
    return Baskets(baskets.matrix[keep], baskets.user_idx[keep], baskets.timestamp[keep], baskets.value[keep])


@dataclass(frozen=True)
class CartChoice:
    """One kind's validated settings and figures."""

    kind: str
    params: dict[str, Any]
    price_exponent: float
    calibration: tuple[float, float]
    validation: dict[str, float]
    model: CartModel = field(repr=False, compare=False)  # fitted on the validation fit orders

    @property
    def objective(self) -> float:
        """Return hit@10 + revenue@10 on validation."""
        return _objective(self.validation)


@dataclass(frozen=True)
class CartEvaluation:
    """The chosen cart model, every kind's test figures beside it, and the returning customers' blend."""

    chosen: CartChoice
    blend: Blend
    choices: dict[str, CartChoice]
    test: dict[str, dict[str, float]]  # kind -> figures on every test cart
    returning: dict[str, dict[str, float]]  # kind (and "<chosen>+blend") -> figures on returning customers
    validation_cut: str
    test_cut: str
    counts: dict[str, int] = field(default_factory=dict)

    def flat(self) -> dict[str, float]:
        """Return every test figure under one name: ``cart_<kind>_<metric>`` and the chosen one bare."""
        out: dict[str, float] = {}
        for kind, figures in self.test.items():
            out |= {f"cart_{kind}_{k}": v for k, v in figures.items()}
        for kind, figures in self.returning.items():
            out |= {f"returning_{kind.replace('+', '_')}_{k}": v for k, v in figures.items()}
        out |= self.test[self.chosen.kind]
        return out

    def spec(self) -> CartSpec:
        """Return what the service needs to rank as validated: kind, params, g, calibration, blend."""
        return CartSpec(
            self.chosen.kind,
            dict(self.chosen.params),
            self.chosen.price_exponent,
            self.chosen.calibration,
            {"buy_again": self.blend.buy_again, "personal": self.blend.personal},
            chosen_on="validation",
        )

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready summary for the manifest."""
        spec = self.spec()
        return {
            "chosen": spec.kind,
            "params": spec.params,
            "price_exponent": spec.price_exponent,
            "calibration": list(self.chosen.calibration),
            "blend": spec.blend,
            "validation_cut": self.validation_cut,
            "test_cut": self.test_cut,
            "counts": self.counts,
            "validation": {k: c.validation for k, c in self.choices.items()},
            "test": self.test,
            "returning": self.returning,
        }


def _objective(figures: Mapping[str, float]) -> float:
    hit, revenue = figures.get("crosssell_hit_at_10", _NAN), figures.get("crosssell_revenue_at_10", _NAN)
    return float(np.nan_to_num(hit) + np.nan_to_num(revenue))


def _ranker(data: CartData, model: CartModel, exponent: float) -> CartRanker:
    return CartRanker(model, data.price, data.in_stock, data.substitutes, exponent)


def _fitted(kind: str, params: Mapping[str, Any], orders: Baskets) -> CartModel:
    model = create_cart_model(kind, **params)
    model.fit(orders.matrix, orders.timestamp)
    return model


def _tune(data: CartData, kind: str, fit: Baskets, held: HeldOut, ks: Sequence[int], seed: int) -> CartChoice:
    """Choose half-life, key parameter and price exponent of one kind on validation carts."""
    params: dict[str, Any] = {}
    best: tuple[float, CartModel, dict[str, float]] | None = None
    grids: list[tuple[str, tuple[Any, ...]]] = [("half_life_days", HALF_LIVES)]
    if kind != "popular":  # popularity reads no pairs: only recency changes it
        grids += [("size_power", SIZE_POWERS), *([KEY_PARAMS[kind]] if kind in KEY_PARAMS else [])]
    for name, values in grids:
        best = None
        for value in values:
            trial = {**params, name: value}
            model = _fitted(kind, trial, fit)
            figures = score_carts(_ranker(data, model, 0.0), held, ks)
            if best is None or _objective(figures) > best[0] + 1e-12:
                best = (_objective(figures), model, figures)
                chosen_value = value
        params[name] = chosen_value
    assert best is not None
    model = best[1]
    model.calibration = fit_calibration(model, held, seed)
    chosen_g, chosen_figures = 0.0, best[2]
    for g in PRICE_EXPONENTS[1:]:
        figures = score_carts(_ranker(data, model, g), held, ks)
        if _objective(figures) > _objective(chosen_figures) + 1e-12:
            chosen_g, chosen_figures = g, figures
    logger.info("cart %s: %s, g=%s, validation %s", kind, params, chosen_g, chosen_figures)
    return CartChoice(kind, params, chosen_g, model.calibration, chosen_figures, model)


def _boosts(history: sp.csr_matrix, model: Recommender | None, held: HeldOut, blend: Blend) -> Boosts:
    """Return each returning customer's boost from their history and the per-user model."""

    def boost(c: int) -> np.ndarray | None:
        user = int(held.users[c])
        row = sp.csr_matrix(history[user])
        dense = np.asarray(row.toarray()).ravel()
        use = model if blend.personal > 0 else None
        scores = None if use is None else np.asarray(use.score(row, np.array([user]))[0])
        return blend.boost(dense, scores)

    return boost


def _returning(held: HeldOut, history: sp.csr_matrix) -> HeldOut:
    """Return the carts whose customer has a history before the cut."""
    users = held.users
    known = (users >= 0) & (users < history.shape[0])
    known[known] = history.getnnz(axis=1)[users[known]] > 0
    return held.subset(known)


def _choose_blend(
    data: CartData, model: CartModel, exponent: float, held: HeldOut, cut: int, ks: Sequence[int]
) -> Blend:
    """Choose the returning customers' blend weights on validation carts, one weight at a time.

    Buy-again first (cheap: no per-user model), then the per-user model's weight beside it: 7
    rankings of the validation carts instead of a 15-point grid, each dense over the catalog.
    """
    history = data.history(cut)
    returning = _returning(held, history)
    if not len(returning):
        return Blend()
    personal_model = data.user_model(history)
    ranker = _ranker(data, model, exponent)
    tried = {Blend(): _objective(score_carts(ranker, returning, ks))}

    def consider(blend: Blend) -> None:
        boosts = _boosts(history, personal_model, returning, blend)
        tried[blend] = _objective(score_carts(ranker, returning, ks, boosts=boosts))

    for buy_again in BUY_AGAIN:
        consider(Blend(buy_again, 0.0))
    again = max(tried, key=tried.__getitem__).buy_again  # ties: the first tried, so no blend first
    for personal in PERSONAL:
        consider(Blend(again, personal))
    best = max(tried, key=tried.__getitem__)
    logger.info("returning customers: blend %s (validation %.4f)", best, tried[best])
    return best


def choose_cart_model(
    data: CartData,
    test_cut: pd.Timestamp,
    validation_fraction: float = 0.2,
    ks: Sequence[int] = (5, 10, 20),
    kinds: Sequence[str] = CART_CANDIDATES,
    seed: int = 42,
    max_carts: int = 3000,
    on_stage: Callable[[str], None] = lambda _: None,
) -> CartEvaluation:
    """Tune every kind on validation, choose one, then score every kind once on the test split."""
    cut = int(test_cut.value)
    train = data.before(cut)
    if not len(train):
        raise OptionError(f"no orders before the cross-sell cutoff {test_cut}")
    vcut = int(np.quantile(train.timestamp, 1.0 - validation_fraction))
    fit, validation = data.before(vcut), data.between(vcut, cut)
    val_held = hold_out(validation, seed, max_carts)
    test_held = hold_out(data.between(cut, None), seed, max_carts)
    choices: dict[str, CartChoice] = {}
    for kind in kinds:
        on_stage(f"tuning the {kind} cart model on {len(val_held):,} validation carts")
        choices[kind] = _tune(data, kind, fit, val_held, ks, seed)
    chosen = max(choices.values(), key=lambda c: c.objective)
    on_stage("choosing the returning customers' blend on validation")
    blend = _choose_blend(data, chosen.model, chosen.price_exponent, val_held, vcut, ks)
    on_stage(f"scoring every cart model once on {len(test_held):,} test carts")
    test, returning = {}, {}
    test_history = data.history(cut)
    returning_held = _returning(test_held, test_history)
    test_user_model = data.user_model(test_history) if blend.personal > 0 else None
    for kind, choice in choices.items():
        model = _fitted(kind, choice.params, train)
        model.calibration = choice.calibration
        ranker = _ranker(data, model, choice.price_exponent)
        test[kind] = score_carts(ranker, test_held, ks)
        returning[kind] = score_carts(ranker, returning_held, ks)
        if kind == chosen.kind and blend.active:
            boosts = _boosts(test_history, test_user_model, returning_held, blend)
            returning[f"{kind}+blend"] = score_carts(ranker, returning_held, ks, boosts=boosts)
    return CartEvaluation(
        chosen=chosen,
        blend=blend,
        choices=choices,
        test=test,
        returning=returning,
        validation_cut=pd.Timestamp(vcut, tz="UTC").isoformat(),
        test_cut=test_cut.isoformat(),
        counts={
            "fit_orders": len(fit),
            "validation_carts": len(val_held),
            "test_carts": len(test_held),
            "returning_test_carts": len(returning_held),
        },
    )
