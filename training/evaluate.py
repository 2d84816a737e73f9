"""Offline evaluation: ranking metrics, revenue captured and cross-sell hits (binary relevance).

For an evaluated user with held-out relevant set ``R`` (``|R| >= 1``) and top-k list at positions
``i = 1..k`` (``rel_i = 1`` when the item at ``i`` is in ``R``, else 0)::

    precision@k = sum_{i<=k} rel_i / k
    recall@k    = sum_{i<=k} rel_i / |R|                      (standard recall, not / min(k, |R|))
    AP@k        = sum_{i<=k} P@i * rel_i / min(k, |R|),       P@i = sum_{j<=i} rel_j / i
    NDCG@k      = DCG@k / IDCG@k,  DCG@k = sum_{i<=k} rel_i / log2(i + 1),
                  IDCG@k = sum_{i=1..min(k, |R|)} 1 / log2(i + 1)
    hit_rate@k  = 1 if sum_{i<=k} rel_i >= 1 else 0

``precision_at_k``, ``recall_at_k``, ``map_at_k`` (mean AP@k), ``ndcg_at_k`` and ``hit_rate_at_k``
average these over the users with at least one relevant item; other users are ignored.
``coverage_at_k`` = distinct items in the top k of those users / number of items.
``revenue_at_k`` = held-out value of the items in each user's top k, summed over users / total
held-out value of the same users.

A position whose score was ``-inf`` (``valid`` False), whose item index is outside the item
range, or that repeats an earlier item of the same list is "no recommendation": it never hits,
covers or earns, yet still counts in precision's ``k``. Lists shorter than ``max(ks)`` are padded
with such positions. A mean over no users or baskets, or a share of zero total value, is NaN.

Holdout (``build_holdout``): the model fits on ``split.train``; the relevant set of a user is their
warm test events of type ``positive`` (every warm test event when the test has none of that type)
on items without a cell in their train row ("new items" protocol): ``recommend`` excludes such
seen items, so keeping them would only cap recall below 1; their value is dropped with them.
Test users unseen in train are counted as ``cold_users``, not evaluated.

Cross-sell is evaluated through the serving ranker in ``training.crosssell``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.ids import IdIndex
from features.matrix import Weighting, build_matrix, rows_of
from features.split import Split
from training.models import Recommender
from training.models.adjustment import top_items

__all__ = [
    "DEFAULT_KS",
    "RANKING",
    "Cut",
    "Holdout",
    "build_holdout",
    "evaluate_model",
    "ranking_metrics",
    "revenue_at_k",
]

logger = logging.getLogger(__name__)

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)


@dataclass(frozen=True)
class Cut:
    """Per evaluated user, what their list holds at one cut-off ``k``: a ranking metric is a value of it.

    ``found``: relevant items in the top ``k``; ``relevant``: relevant items in all; ``depth``:
    ``min(k, relevant)``; ``ap``: the sum of precision at each hit; ``dcg`` and ``ideal``: the
    discounted gain of the list and of a perfect one.
    """

    k: int
    found: np.ndarray
    relevant: np.ndarray
    depth: np.ndarray
    ap: np.ndarray
    dcg: np.ndarray
    ideal: np.ndarray


#: Every per-user ranking metric, by name; reported as ``{name}_at_{k}``, the mean over users.
#: A new metric is one entry here.
RANKING: dict[str, Callable[[Cut], np.ndarray]] = {
    "precision": lambda c: c.found / c.k,
    "recall": lambda c: c.found / c.relevant,
    "map": lambda c: c.ap / c.depth,
    "ndcg": lambda c: c.dcg / c.ideal,
    "hit_rate": lambda c: (c.found > 0).astype(np.float64),
}
_NAN = float("nan")


@dataclass(frozen=True)
class Holdout:
    """Train matrix and held-out truth, aligned to the train index."""

    train: sp.csr_matrix  # users x items confidence (what the model fits on)
    relevant: sp.csr_matrix  # users x items binary float32: held-out positives
    value: sp.csr_matrix  # users x items float64: held-out purchase value (price x quantity)
    users: IdIndex
    items: IdIndex
    eval_users: np.ndarray  # user rows with >= 1 relevant item (int64)
    cold_users: int  # test users unseen in train (counted, not evaluated)


def _observed(column: pd.Series) -> IdIndex:
    """Index the values a categorical id column actually holds."""
    return IdIndex.from_values(column.cat.remove_unused_categories().cat.categories)


def build_holdout(
    split: Split,
    weighting: Weighting | None = None,
    positive: str = "purchase",
) -> Holdout:
    """Build the train matrix and the held-out relevant items and value of unseen (user, item)."""
    users, items = _observed(split.train["user_id"]), _observed(split.train["item_id"])
    train = build_matrix(split.train, users, items, weighting)
    test = split.test
    chosen = (test["event_type"] == positive).to_numpy()
    if not chosen.any():
        logger.warning("test split has no %r events; every test event counts as relevant", positive)
        chosen = np.ones(len(test), dtype=bool)
    test = test[chosen]
    rows, cols = rows_of(test["user_id"], users), rows_of(test["item_id"], items)
    amount = (test["price"].fillna(0.0) * test["quantity"]).to_numpy(dtype=np.float64)
    keep = (rows >= 0) & (cols >= 0)
    if keep.any():
        seen = np.asarray(train[rows[keep], cols[keep]]).ravel() != 0
        keep[np.flatnonzero(keep)[seen]] = False
        logger.info("dropped %d held-out events on items already seen in train", int(seen.sum()))
    shape, cells = (len(users), len(items)), (rows[keep], cols[keep])
    relevant = (sp.csr_matrix((np.ones(len(cells[0])), cells), shape=shape) > 0).astype(np.float32)
    value = sp.csr_matrix((amount[keep], cells), shape=shape, dtype=np.float64)
    value.sum_duplicates()
    value.eliminate_zeros()
    eval_users = np.flatnonzero(relevant.getnnz(axis=1)).astype(np.int64)
    cold = split.cold["user_id"]
    cold_users = int(cold[rows_of(cold, users) < 0].nunique())
    logger.info("holdout: %d users to evaluate, %d cold users", len(eval_users), cold_users)
    return Holdout(train, relevant, value, users, items, eval_users, cold_users)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Return the cut-offs sorted and unique; each must be a positive integer."""
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1:
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    return out


def _usable(
    recommended: np.ndarray, valid: np.ndarray | None, shape: tuple[int, int], width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the lists cut or padded to ``width`` and the mask of positions that count."""
    rec = np.asarray(recommended, dtype=np.int64)
    ok = np.ones(rec.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if rec.ndim != 2 or ok.shape != rec.shape or rec.shape[0] != shape[0]:
        raise ValueError(f"recommended {rec.shape} and valid {ok.shape} need {shape[0]} rows")
    n_items = shape[1]
    pad = ((0, 0), (0, max(width - rec.shape[1], 0)))
    rec = np.pad(rec, pad, constant_values=-1)[:, :width]
    ok = np.pad(ok, pad, constant_values=False)[:, :width] & (rec >= 0) & (rec < n_items)
    key = np.where(ok, rec, -1)
    order = np.argsort(key, axis=1, kind="stable")
    ordered = np.take_along_axis(key, order, axis=1)
    repeat = np.zeros(ok.shape, dtype=bool)
    np.put_along_axis(repeat, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
    return rec, ok & ~repeat


def _cells(matrix: sp.csr_matrix, rec: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Return ``matrix[r, rec[r, j]]`` (float64) where ``ok``, else 0, by sorted-key search."""
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    m.sum_duplicates()
    n_rows, n_cols = m.shape
    if m.nnz == 0:
        return np.zeros(rec.shape)
    keys = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(m.indptr)) * n_cols + m.indices
    want = np.arange(n_rows, dtype=np.int64)[:, None] * n_cols + rec
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return np.where(ok & (keys[at] == want), m.data[at], 0.0)


def _ranking_sums(
    rec: np.ndarray,
    ok: np.ndarray,
    relevant: sp.csr_matrix,
    ks: tuple[int, ...],
    covered: np.ndarray,
) -> tuple[int, np.ndarray]:
    """Return the users with relevant items and their metric sums (ks x metrics); mark coverage."""
    truth = sp.csr_matrix(relevant > 0, dtype=np.float64)
    n_rel = truth.getnnz(axis=1)
    users = np.flatnonzero(n_rel)
    rec, ok, n_rel = rec[users], ok[users], n_rel[users]
    hits = _cells(truth[users], rec, ok)
    pos = np.arange(1, rec.shape[1] + 1, dtype=np.float64)
    found = np.cumsum(hits, axis=1)
    ap = np.cumsum(found / pos * hits, axis=1)
    discount = 1.0 / np.log2(pos + 1.0)
    dcg, ideal = np.cumsum(hits * discount, axis=1), np.cumsum(discount)
    sums = np.zeros((len(ks), len(RANKING)))
    for j, k in enumerate(ks):
        depth = np.minimum(k, n_rel)
        cut = Cut(k, found[:, k - 1], n_rel, depth, ap[:, k - 1], dcg[:, k - 1], ideal[depth - 1])
        sums[j] = [metric(cut).sum() for metric in RANKING.values()]
        covered[j, rec[:, :k][ok[:, :k]]] = True
    return len(users), sums


def _ranking_result(
    n_users: int, sums: np.ndarray, covered: np.ndarray, ks: tuple[int, ...], n_items: int
) -> dict[str, float]:
    """Turn metric sums into means and coverage shares."""
    out: dict[str, float] = {}
    for j, k in enumerate(ks):
        for name, total in zip(RANKING, sums[j], strict=True):
            out[f"{name}_at_{k}"] = float(total / n_users) if n_users else _NAN
        out[f"coverage_at_{k}"] = float(covered[j].sum() / n_items) if n_items else _NAN
    return out


def ranking_metrics(
    recommended: np.ndarray,
    relevant: sp.csr_matrix,
    ks: Sequence[int] = DEFAULT_KS,
    n_items: int | None = None,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """Return precision, recall, MAP, NDCG, hit rate and coverage at each k (see module doc)."""
    cuts, truth = _check_ks(ks), sp.csr_matrix(relevant)
    rec, ok = _usable(recommended, valid, truth.shape, cuts[-1])
    covered = np.zeros((len(cuts), truth.shape[1]), dtype=bool)
    n_users, sums = _ranking_sums(rec, ok, truth, cuts, covered)
    total_items = truth.shape[1] if n_items is None else n_items
    return _ranking_result(n_users, sums, covered, cuts, total_items)


def _revenue_result(total: float, earned: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """Turn earned value per k into shares of the total."""
    shares = earned / total if total > 0 else np.full(len(ks), _NAN)
    return {f"revenue_at_{k}": float(v) for k, v in zip(ks, shares, strict=True)}


def _revenue_sums(
    rec: np.ndarray, ok: np.ndarray, value: sp.csr_matrix, ks: tuple[int, ...]
) -> tuple[float, np.ndarray]:
    """Return the total held-out value and the value found in the top k for each k."""
    earned = np.cumsum(_cells(value, rec, ok), axis=1)
    return float(value.sum()), np.array([earned[:, k - 1].sum() for k in ks])


def revenue_at_k(
    recommended: np.ndarray,
    value: sp.csr_matrix,
    ks: Sequence[int] = DEFAULT_KS,
    valid: np.ndarray | None = None,
) -> dict[str, float]:
    """Return the share of held-out value whose item is in the user's top k, for each k."""
    cuts, amounts = _check_ks(ks), sp.csr_matrix(value)
    rec, ok = _usable(recommended, valid, amounts.shape, cuts[-1])
    return _revenue_result(*_revenue_sums(rec, ok, amounts, cuts), cuts)


def _capped_lists(
    model: Recommender, train: sp.csr_matrix, rows: np.ndarray, k: int, categories: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Recommend ``k`` unseen items per row with at most ``cap`` of a category (as the service does)."""
    scores = np.asarray(model.score(train, rows), dtype=np.float64)
    r, c = train.nonzero()
    scores[r, c] = -np.inf
    idx, values = np.full((len(rows), k), -1, dtype=np.int64), np.full((len(rows), k), -np.inf)
    for i, row in enumerate(scores):  # per user, as each request is answered
        found, found_values = top_items(row, k, categories=categories, cap=cap)
        idx[i, : len(found)], values[i, : len(found)] = found, found_values
    return idx, values


def evaluate_model(
    model: Recommender,
    holdout: Holdout,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 2048,
    categories: np.ndarray | None = None,
    cap: int | None = None,
) -> dict[str, float]:
    """Recommend max(ks) unseen items to every evaluated user, in batches, and score the lists.

    With ``cap`` (and each item's category code in ``categories``, -1 for none), the lists hold
    at most ``cap`` items of one category, as the service's ``max_per_category`` answers them.
    """
    cuts, n_items = _check_ks(ks), len(holdout.items)
    if model.n_items != n_items:
        raise ValueError(f"model scores {model.n_items} items but the holdout has {n_items}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    covered = np.zeros((len(cuts), n_items), dtype=bool)
    sums, earned = np.zeros((len(cuts), len(RANKING))), np.zeros(len(cuts))
    n_users, total = 0, 0.0
    for start in range(0, len(holdout.eval_users), batch_size):
        rows = holdout.eval_users[start : start + batch_size]
        if cap is not None and categories is not None:
            idx, scores = _capped_lists(model, holdout.train[rows], rows, cuts[-1], categories, cap)
        else:
            idx, scores = model.recommend(holdout.train[rows], cuts[-1], user_idx=rows)
        rec, ok = _usable(idx, np.isfinite(scores), (len(rows), n_items), cuts[-1])
        n, part = _ranking_sums(rec, ok, holdout.relevant[rows], cuts, covered)
        value_total, value_found = _revenue_sums(rec, ok, holdout.value[rows], cuts)
        n_users, total = n_users + n, total + value_total
        sums, earned = sums + part, earned + value_found
    logger.info("evaluated %s on %d users", model.kind, n_users)
    return {
        **_ranking_result(n_users, sums, covered, cuts, n_items),
        **_revenue_result(total, earned, cuts),
        "users_evaluated": n_users,
        "cold_users": holdout.cold_users,
    }
