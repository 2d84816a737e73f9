"""Cross-sell evaluation and choice: held-out orders ranked by the serving ranker, baselines beside.

Protocol. Orders (identified and anonymous) are split by time: ``test`` holds the orders at or
after the evaluation cutoff; ``validation`` the latest ``validation_fraction`` of the orders before
it; the cart models are fitted on the orders before the validation cut to choose, and on every
order before the cutoff to test. From each order of >= 2 distinct items one item, drawn at random,
is held out and the rest is the cart; the cart goes through ``CartRanker.rank``, exactly as the
service ranks it (same candidates, stock and substitutes rules, tie order)::

    crosssell_hit_at_k     = share of carts whose held-out item is in the top k
    crosssell_revenue_at_k = price of the held-out items found in the top k / price of all held out

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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.baskets import Baskets
from training.models import Recommender
from training.models.cart import CartModel, create_cart_model
from training.models.cart_ranking import Blend, CartRanker

__all__ = [
    "CART_CANDIDATES",
    "CartChoice",
    "CartData",
    "CartEvaluation",
    "HeldOut",
    "choose_cart_model",
    "fit_calibration",
    "hold_out",
    "score_carts",
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
BLEND_GRID: tuple[tuple[float, float], ...] = tuple(
    (b, p) for b in (0.0, 0.05, 0.1, 0.2, 0.4) for p in (0.0, 0.25, 0.5)
)
_NAN = float("nan")

#: A known customer's boost for a cart at position ``c`` of a held-out set, or None.
Boosts = Callable[[int], np.ndarray | None]


@dataclass(frozen=True)
class HeldOut:
    """Carts with one item held out of each, and the customer of each (-1: anonymous or new)."""

    carts: sp.csr_matrix
    held: np.ndarray
    users: np.ndarray

    def __len__(self) -> int:
        return len(self.held)

    def rows(self, c: int) -> np.ndarray:
        """Return the item rows of cart ``c``."""
        return self.carts.indices[self.carts.indptr[c] : self.carts.indptr[c + 1]].astype(np.int64)

    def subset(self, keep: np.ndarray) -> HeldOut:
        """Return the carts where ``keep`` holds."""
        return HeldOut(self.carts[keep], self.held[keep], self.users[keep])


def hold_out(baskets: Baskets, seed: int = 0, max_carts: int | None = None) -> HeldOut:
    """Hold one random item out of each basket of 2+ distinct items (at most ``max_carts``, sampled)."""
    matrix = sp.csr_matrix(baskets.matrix, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    users = np.asarray(baskets.user_idx, dtype=np.int64)
    big = np.diff(matrix.indptr) >= 2
    matrix, users = matrix[big], users[big]
    rng = np.random.default_rng(seed)
    if max_carts is not None and matrix.shape[0] > max_carts:
        pick = np.sort(rng.choice(matrix.shape[0], max_carts, replace=False))
        matrix, users = matrix[pick], users[pick]
    at = matrix.indptr[:-1] + rng.integers(0, np.diff(matrix.indptr))
    held = matrix.indices[at].astype(np.int64)
    data = np.ones(matrix.nnz, dtype=np.float32)
    data[at] = 0.0
    carts = sp.csr_matrix((data, matrix.indices, matrix.indptr), shape=matrix.shape)
    carts.eliminate_zeros()
    return HeldOut(carts, held, users)


def fit_calibration(
    model: CartModel, held: HeldOut, seed: int = 0, negatives: int = 200, iterations: int = 25
) -> tuple[float, float]:
    """Fit ``P = sigmoid(a x feature(score) + b)`` by logistic regression on held-out carts.

    Each cart contributes its held-out item (label 1), every item its rows touch, and a sample of
    ``negatives`` untouched items weighted up to stand for all of them (label 0).
    """
    if not len(held):
        return 1.0, 0.0
    rng = np.random.default_rng(seed)
    idle = model.feature(model.idle)
    xs, ys, ws = [], [], []
    n_items = model.n_items
    for c in range(len(held)):
        rows = held.rows(c)
        candidates, scores, _, _ = model.score_cart(rows)
        x = idle.copy()
        x[candidates] = model.feature(scores)
        x[rows] = np.nan
        touched = np.zeros(n_items, dtype=bool)
        touched[candidates] = True
        touched[rows] = False
        rest = np.flatnonzero(~touched)
        sample = rng.choice(rest, min(negatives, len(rest)), replace=False) if len(rest) else rest
        picked = np.concatenate([np.flatnonzero(touched), sample])
        weight = np.concatenate(
            [np.ones(int(touched.sum())), np.full(len(sample), len(rest) / max(len(sample), 1))]
        )
        label = (picked == held.held[c]).astype(np.float64)
        xs.append(x[picked])
        ys.append(label)
        ws.append(weight)
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    ok = np.isfinite(x)
    x, y, w = x[ok], y[ok], w[ok]
    if y.sum() == 0:
        return 1.0, 0.0
    return _logistic(x, y, w, iterations)


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, iterations: int) -> tuple[float, float]:
    """Return (a, b) of a weighted one-feature logistic regression, by damped Newton steps.

    The slope has a ridge of a tenth of the positives' weight, so separable carts (a sparse model
    on a small store) give a steep but finite slope instead of diverging.
    """
    mean = float(np.average(x, weights=w))
    scale = float(np.sqrt(np.average((x - mean) ** 2, weights=w))) or 1.0
    design = np.stack([(x - mean) / scale, np.ones_like(x)], axis=1)
    ridge = np.diag([0.1 * float((w * y).sum()), 0.0])
    coef = np.array([0.0, float(np.log(max(np.average(y, weights=w), 1e-12)))])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ coef, -50.0, 50.0)))
        grad = design.T @ (w * (y - p)) - ridge @ coef
        hess = (design * (w * p * (1.0 - p))[:, None]).T @ design + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        step *= min(1.0, 5.0 / max(float(np.abs(step).max()), 1e-12))
        coef = coef + step
        if np.abs(step).max() < 1e-8:
            break
    a = float(coef[0]) / scale
    return a, float(coef[1]) - a * mean


def score_carts(
    ranker: CartRanker,
    held: HeldOut,
    ks: Sequence[int],
    exponent: float | None = None,
    boosts: Boosts | None = None,
) -> dict[str, float]:
    """Rank every held-out cart through ``ranker`` and return hit@k and revenue@k."""
    cuts = sorted({int(k) for k in ks})
    width = cuts[-1]
    position = np.full(len(held), width, dtype=np.int64)  # where the held-out item ranked (width: not found)
    for c in range(len(held)):
        boost = boosts(c) if boosts is not None else None
        got = ranker.rank(held.rows(c), width, exponent=exponent, boost=boost).rows
        found = np.flatnonzero(got == held.held[c])
        if len(found):
            position[c] = found[0]
    worth = ranker.price[held.held]
    out: dict[str, float] = {}
    for k in cuts:
        hit = position < k
        out[f"crosssell_hit_at_{k}"] = float(hit.mean()) if len(held) else _NAN
        out[f"crosssell_revenue_at_{k}"] = float(worth[hit].sum() / worth.sum()) if worth.sum() > 0 else _NAN
    out["crosssell_baskets"] = len(held)
    return out


@dataclass(frozen=True)
class CartData:
    """What cart models are fitted and judged on, over one item index."""

    orders: Baskets  # identified and anonymous orders, user_idx -1 when anonymous
    price: np.ndarray
    in_stock: np.ndarray
    substitutes: sp.csr_matrix
    history: Callable[[int], sp.csr_matrix]  # customers' histories of the orders before a time (ns)
    user_model: Callable[[sp.csr_matrix], Recommender | None]  # a per-user model fitted on a history

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

    def spec(self) -> dict[str, Any]:
        """Return what the service needs to rank as validated: kind, params, g, calibration, blend."""
        return {
            "kind": self.chosen.kind,
            "params": self.chosen.params,
            "price_exponent": self.chosen.price_exponent,
            "calibration": list(self.chosen.calibration),
            "blend": {"buy_again": self.blend.buy_again, "personal": self.blend.personal},
        }

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready summary for the manifest."""
        spec = self.spec()
        return {
            "chosen": spec.pop("kind"),
            **spec,
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
    grids: list[tuple[str, tuple[Any, ...]]] = [("half_life_days", HALF_LIVES), ("size_power", SIZE_POWERS)]
    if kind in KEY_PARAMS:
        grids.append(KEY_PARAMS[kind])
    if kind == "popular":
        grids = [("half_life_days", HALF_LIVES)]
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
    return CartChoice(kind, params, chosen_g, model.calibration, chosen_figures)


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
    """Choose the returning customers' blend weights on validation carts."""
    history = data.history(cut)
    returning = _returning(held, history)
    if not len(returning):
        return Blend()
    personal_model = data.user_model(history)
    ranker = _ranker(data, model, exponent)
    best, best_value = Blend(), -1.0
    for buy_again, personal in BLEND_GRID:
        if personal and personal_model is None:
            continue
        blend = Blend(buy_again, personal)
        boosts = _boosts(history, personal_model, returning, blend) if blend.active else None
        value = _objective(score_carts(ranker, returning, ks, boosts=boosts))
        if value > best_value + 1e-12:
            best, best_value = blend, value
    logger.info("returning customers: blend %s (validation %.4f)", best, best_value)
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
        raise ValueError(f"no orders before the cross-sell cutoff {test_cut}")
    vcut = int(np.quantile(train.timestamp, 1.0 - validation_fraction))
    fit, validation = data.before(vcut), data.between(vcut, cut)
    val_held = hold_out(validation, seed, max_carts)
    test_held = hold_out(data.between(cut, None), seed, max_carts)
    choices: dict[str, CartChoice] = {}
    for kind in kinds:
        on_stage(f"tuning the {kind} cart model on {len(val_held):,} validation carts")
        choices[kind] = _tune(data, kind, fit, val_held, ks, seed)
    chosen = max(choices.values(), key=lambda c: c.objective)
    chosen_model = _fitted(chosen.kind, chosen.params, fit)
    chosen_model.calibration = chosen.calibration
    on_stage("choosing the returning customers' blend on validation")
    blend = _choose_blend(data, chosen_model, chosen.price_exponent, val_held, vcut, ks)
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
        chosen=replace(chosen),
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
