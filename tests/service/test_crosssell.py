"""The service ranks carts with the trained cart model through the ranker evaluation scores."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from features.artifact import ModelArtifact
from features.dataset import Dataset
from service.config import Settings
from service.crosssell import CrossSeller
from service.loading import load
from service.scorer import Scorer
from training.heldout import hold_out
from training.job import all_orders
from training.models.cart import load_cart_model, stored_cells
from training.models.cart_ranking import Blend, CartRanker, substitute_matrix


@pytest.fixture(scope="module")
def seller(artifact: ModelArtifact) -> CrossSeller:
    return CrossSeller(Scorer(load(str(artifact.path), ""), Settings()))


def _dense_ranking(seller: CrossSeller, rows: np.ndarray, exponent: float, n: int) -> list[str]:
    """Rank every item by calibrated P(j | cart) x price ** exponent, the plain way."""
    model = seller.ranker.model
    rank = model.probability(model.score_dense(rows)) * np.power(seller.price, exponent)
    rank[rows] = -np.inf
    rank[seller.substitutes(rows)] = -np.inf
    rank[~seller.catalog.in_stock] = -np.inf
    order = np.lexsort((np.arange(len(rank)), -rank))[:n]
    return [str(seller.catalog.ids[i]) for i in order if np.isfinite(rank[i])]


def test_the_service_serves_the_cart_model_training_chose(
    seller: CrossSeller, artifact: ModelArtifact
) -> None:
    spec = artifact.manifest.crosssell
    assert seller.ranker.model.kind == spec.kind == seller.kind
    assert seller.ranker.price_exponent == spec.price_exponent
    assert seller.blend.buy_again == spec.blend["buy_again"]


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


def test_the_answer_is_what_offline_evaluation_scores(
    seller: CrossSeller, artifact: ModelArtifact, dataset: Dataset
) -> None:
    model = load_cart_model(artifact.cart_dir)
    catalog = seller.catalog
    coview = seller.scorer.coview
    substitutes = substitute_matrix(
        None if coview is None else coview.pair_counts, seller.assoc.pair_counts, catalog.categories
    )
    offline = CartRanker(
        model, catalog.prices, catalog.in_stock, substitutes, artifact.manifest.crosssell.price_exponent
    )
    held = hold_out(all_orders(dataset), seed=1, max_carts=40)
    for c in range(len(held)):
        rows = held.rows(c)
        served = seller.suggest([(str(catalog.ids[r]), 1) for r in rows], 10)
        assert [i["item_id"] for i in served["items"]] == catalog.ids[offline.rank(rows, 10).rows].tolist()


def test_stored_cells_lists_each_rows_cells(seller: CrossSeller) -> None:
    weights = seller.ranker.model.weights
    rows = np.array([5, 0, 5])
    which, cells = stored_cells(weights, rows)
    for position, row in enumerate(rows):
        assert sorted(weights.indices[cells[which == position]]) == sorted(weights[int(row)].indices)


def test_a_carts_cost_is_the_number_of_cells_it_reads(seller: CrossSeller) -> None:
    weights = seller.ranker.model.weights
    rows = np.argsort(-seller.assoc.item_counts)[:3]
    cart = [(str(seller.catalog.ids[r]), 1) for r in rows] + [("not-an-item", 1)]
    assert seller.cells(cart) == sum(weights[int(r)].nnz for r in rows)


def test_cart_value_counts_price_times_quantity(seller: CrossSeller) -> None:
    rows = np.argsort(-seller.assoc.item_counts)[:2]
    ids = [str(seller.catalog.ids[r]) for r in rows]
    answer = seller.suggest([(ids[0], 3), (ids[1], 1), ("not-an-item", 5)], 5)
    expected = 3 * seller.price[rows[0]] + seller.price[rows[1]]
    assert answer["cart_value"] == pytest.approx(round(expected, 2))


def test_a_known_customer_may_be_offered_what_they_buy_again(artifact: ModelArtifact) -> None:
    seller = CrossSeller(Scorer(load(str(artifact.path), ""), Settings()))
    seller.blend = Blend(buy_again=0.4)  # whatever training chose on this store
    scorer = seller.scorer
    user = str(scorer.users.ids[0])
    history = scorer.history_row(0)
    top = np.argsort(-seller.assoc.item_counts)[:1]
    cart = [(str(seller.catalog.ids[top[0]]), 1)]
    anonymous = [i["item_id"] for i in seller.suggest(cart, 20)["items"]]
    known = seller.suggest(cart, 20, user_id=user)
    owned = set(seller.catalog.ids[history.indices].tolist())
    assert known["personalized"] is True
    assert len(owned & {i["item_id"] for i in known["items"]}) > len(owned & set(anonymous))
    assert cart[0][0] not in {i["item_id"] for i in known["items"]}


def test_the_explanations_report_the_one_definition_of_support_confidence_and_lift(
    seller: CrossSeller, artifact: ModelArtifact
) -> None:
    from features.association import pair_statistics

    assoc, ids = seller.assoc, list(artifact.items.ids)
    paired = ids[int(np.argmax(np.diff(sp.csr_matrix(assoc.pair_counts).indptr)))]  # the most partners
    answer = seller.suggest(seller.prepare([(paired, 1)]), 10)
    anchored = [s for s in answer["items"] if s["because_of"] is not None]
    assert anchored
    for suggestion in anchored:
        i, j = ids.index(suggestion["because_of"]), ids.index(suggestion["item_id"])
        joint = np.array([assoc.pair_counts[i, j]])
        support, confidence, lift = pair_statistics(
            joint, assoc.item_counts[[i]], assoc.item_counts[[j]], assoc.n_baskets
        )
        assert suggestion["support"] == pytest.approx(round(float(support[0]), 6))
        assert suggestion["confidence"] == pytest.approx(round(float(confidence[0]), 6))
        assert suggestion["lift"] == pytest.approx(round(float(lift[0]), 4))


def test_items_without_a_category_are_never_each_others_substitutes() -> None:
    viewed = sp.csr_matrix(np.array([[0, 5, 5], [5, 0, 5], [5, 5, 0]], dtype=np.float32))
    bought = sp.csr_matrix((3, 3), dtype=np.float32)  # viewed together often, never bought together
    unknown = substitute_matrix(viewed, bought, np.array(["", "", ""], dtype=object))
    assert unknown.nnz == 0
    known = substitute_matrix(viewed, bought, np.array(["mugs", "mugs", ""], dtype=object))
    assert {(int(r), int(c)) for r, c in zip(*known.nonzero(), strict=True)} == {(0, 1), (1, 0)}
