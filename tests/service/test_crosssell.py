"""The sparse cross-sell ranking equals a dense ranking over the whole catalog."""

from __future__ import annotations

import numpy as np
import pytest

from features.bundle import Bundle
from service.config import Settings
from service.crosssell import CrossSeller, stored_cells
from service.loading import load
from service.recommender import Scorer


@pytest.fixture(scope="module")
def seller(bundle: Bundle) -> CrossSeller:
    return CrossSeller(Scorer(load(str(bundle.path), ""), Settings()))


def _dense_ranking(seller: CrossSeller, rows: np.ndarray, exponent: float, n: int) -> list[str]:
    """Rank every item by P(j | cart) x price ** exponent, the plain way."""
    log_miss = np.asarray(seller.assoc.miss_log(Settings().crosssell_shrinkage)[rows].sum(axis=0)).ravel()
    prob = 1.0 - (1.0 - seller.assoc.base_rate()) * np.exp(log_miss)
    rank = prob * np.power(seller.price, exponent)
    rank[rows] = -np.inf
    rank[seller.substitutes(rows)] = -np.inf
    rank[~seller.catalog.in_stock] = -np.inf
    order = np.lexsort((np.arange(len(rank)), -rank))[:n]
    return [str(seller.catalog.ids[i]) for i in order if np.isfinite(rank[i])]


@pytest.mark.parametrize("rank_by", ["expected_value", "probability"])
def test_sparse_ranking_equals_the_dense_one(seller: CrossSeller, rank_by: str) -> None:
    rng = np.random.default_rng(5)
    popular = np.argsort(-seller.assoc.item_counts)[:60]
    exponent = 1.0 if rank_by == "expected_value" else 0.0
    for size in (1, 3, 8):
        rows = np.unique(rng.choice(popular, size, replace=False))
        cart = [(str(seller.catalog.ids[r]), 1) for r in rows]
        got = seller.suggest(cart, 15, rank_by=rank_by)  # type: ignore[arg-type]
        assert [i["item_id"] for i in got["items"]] == _dense_ranking(seller, rows, exponent, 15)


def test_stored_cells_lists_each_rows_cells(seller: CrossSeller) -> None:
    rows = np.array([5, 0, 5])
    which, cells = stored_cells(seller.counts, rows)
    for position, row in enumerate(rows):
        expected = seller.counts[int(row)].indices
        assert sorted(seller.counts.indices[cells[which == position]]) == sorted(expected)


def test_a_carts_cost_is_the_number_of_stored_pairs_it_reads(seller: CrossSeller) -> None:
    rows = np.argsort(-seller.assoc.item_counts)[:3]
    cart = [(str(seller.catalog.ids[r]), 1) for r in rows] + [("not-an-item", 1)]
    assert seller.cells(cart) == sum(seller.counts[int(r)].nnz for r in rows)
