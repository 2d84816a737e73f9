"""Cart models: what each learns from baskets, how a cart is scored, and saving without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from training.models import ModelError
from training.models.cart import (
    CART_KINDS,
    create_cart_model,
    load_cart_model,
    recency_weights,
    save_cart_model,
    strongest,
)
from training.models.cart_ranking import Blend, CartRanker

DAY = 86_400 * 10**9


def baskets(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    cells = [(b, i) for b, items in enumerate(rows) for i in items]
    r, c = zip(*cells, strict=True)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), n_items))


#: 0 and 1 go together; 2 and 3 go together; 4 is bought alone, often.
ORDERS = baskets([[0, 1]] * 6 + [[2, 3]] * 4 + [[0, 2]] + [[4]] * 8, 5)
TIMES = np.zeros(ORDERS.shape[0], dtype=np.int64)


def test_recency_weights_halve_at_the_half_life() -> None:
    ts = np.array([0, 30 * DAY, 60 * DAY], dtype=np.int64)
    assert recency_weights(ts, 30.0).tolist() == pytest.approx([0.25, 0.5, 1.0])
    assert recency_weights(ts, None).tolist() == [1.0, 1.0, 1.0]


def test_strongest_keeps_the_k_largest_cells_per_row_ties_to_the_lower_column() -> None:
    m = sp.csr_matrix(np.array([[0.0, 3.0, 1.0, 3.0], [2.0, 0.0, 0.0, 0.0]]))
    kept = strongest(m, 1).toarray()
    assert kept.tolist() == [[0.0, 3.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize("kind", sorted(set(CART_KINDS) - {"popular"}))
def test_every_cart_model_puts_the_partner_first(kind: str) -> None:
    model = create_cart_model(kind, min_count=1)
    model.fit(ORDERS, TIMES)
    for anchor, partner in ((0, 1), (3, 2)):
        scores = model.score_dense(np.array([anchor]))
        scores[anchor] = -np.inf
        assert int(np.argmax(scores)) == partner


def test_popular_ignores_the_cart() -> None:
    model = create_cart_model("popular")
    model.fit(ORDERS, TIMES)
    assert int(np.argmax(model.score_dense(np.array([0])))) == 4


def test_noisy_or_follows_its_formula() -> None:
    model = create_cart_model("noisy_or", shrinkage=1.0, min_count=1)
    model.fit(ORDERS, TIMES)
    n = ORDERS.shape[0]
    base = np.asarray(ORDERS.sum(axis=0)).ravel() / n
    # P(1 | {0, 2}) = 1 - (1 - P(1)) (1 - c(0,1)/(c(0)+1)) (1 - c(2,1)/(c(2)+1)); c(2, 1) = 0
    expected = 1 - (1 - base[1]) * (1 - 6 / (7 + 1))
    assert model.score_dense(np.array([0, 2]))[1] == pytest.approx(expected, rel=1e-5)


def test_confidence_takes_the_best_rule_over_the_cart() -> None:
    model = create_cart_model("confidence", shrinkage=0.0, min_count=1)
    model.fit(ORDERS, TIMES)
    # conf(1 | 0) = 6/7, conf(3 | 2) = 4/5: the max over the cart, not a sum
    scores = model.score_dense(np.array([0, 2]))
    assert scores[1] == pytest.approx(6 / 7, rel=1e-5) and scores[3] == pytest.approx(4 / 5, rel=1e-5)


def test_recent_orders_weigh_more() -> None:
    # 0 was bought with 1 long ago and with 2 lately: a half-life turns the answer to 2.
    orders = baskets([[0, 1]] * 3 + [[0, 2]] * 2, 3)
    ts = np.array([0, 0, 0, 300 * DAY, 300 * DAY], dtype=np.int64)
    plain, recent = (
        create_cart_model("cooccurrence", min_count=1),
        create_cart_model("cooccurrence", min_count=1, half_life_days=30.0),
    )
    plain.fit(orders, ts)
    recent.fit(orders, ts)
    assert int(np.argmax(plain.score_dense(np.array([0]))[1:])) + 1 == 1
    assert int(np.argmax(recent.score_dense(np.array([0]))[1:])) + 1 == 2


def test_ease_on_a_large_catalog_fits_only_the_items_in_most_orders() -> None:
    model = create_cart_model("ease", max_items=3, min_count=1)
    model.fit(ORDERS, TIMES)  # items by orders: 0 (7), 4 (8), 1 (6), 2 (5), 3 (4) -> 4, 0, 1
    touched = set(model.weights.nonzero()[0]) | set(model.weights.nonzero()[1])
    assert touched <= {0, 1, 4}
    assert model.weights.shape == (5, 5)


def test_each_row_keeps_at_most_its_neighbours() -> None:
    rng = np.random.default_rng(0)
    rows = [list(rng.choice(30, 6, replace=False)) for _ in range(200)]
    model = create_cart_model("cosine", neighbours=4, min_count=1)
    model.fit(baskets(rows, 30), np.zeros(200, dtype=np.int64))
    assert np.diff(model.weights.indptr).max() <= 4


@pytest.mark.parametrize("kind", sorted(CART_KINDS))
def test_a_saved_cart_model_loads_with_the_same_scores_and_no_pickle(kind: str, tmp_path: Path) -> None:
    model = create_cart_model(kind, min_count=1)
    model.fit(ORDERS, TIMES)
    model.calibration = (0.5, -1.0)
    save_cart_model(model, tmp_path / "cart")
    assert not list((tmp_path / "cart").glob("*.pkl"))
    loaded = load_cart_model(tmp_path / "cart")
    cart = np.array([0, 2])
    assert loaded.probability(loaded.score_dense(cart)) == pytest.approx(
        model.probability(model.score_dense(cart))
    )
    assert loaded.calibration == (0.5, -1.0) and loaded.params == model.params


def test_a_missing_cart_model_file_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot load the cart model"):
        load_cart_model(tmp_path)


def test_an_unknown_cart_model_or_parameter_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown cart model"):
        create_cart_model("magic")
    with pytest.raises(ModelError, match="no parameter alpha"):
        create_cart_model("ease", alpha=1.0)


def _ranker(kind: str = "cosine", **params: float) -> CartRanker:
    model = create_cart_model(kind, min_count=1, **params)
    model.fit(ORDERS, TIMES)
    price = np.array([1.0, 2.0, 50.0, 3.0, 1.0])
    return CartRanker(model, price, np.ones(5, dtype=bool), sp.csr_matrix((5, 5), dtype=bool), 0.0)


def test_the_sparse_ranking_equals_the_dense_one() -> None:
    ranker = _ranker()
    for cart in ([0], [2], [0, 2], [4]):
        rows = np.array(cart)
        for g in (0.0, 1.0):
            got = ranker.rank(rows, 5, exponent=g).rows
            prob = ranker.model.probability(ranker.model.score_dense(rows))
            rank = prob * ranker.price**g
            rank[rows] = -np.inf
            order = np.lexsort((np.arange(5), -rank))
            assert got.tolist() == [int(i) for i in order if np.isfinite(rank[i])][: len(got)]
            assert len(got) == 5 - len(cart)


def test_a_known_customers_boost_brings_back_what_they_buy_again() -> None:
    ranker = _ranker()
    history = np.array([0.0, 0.0, 0.0, 0.0, 30.0])
    plain = ranker.rank(np.array([0]), 1).rows
    boosted = ranker.rank(np.array([0]), 1, boost=Blend(buy_again=5.0).boost(history, None)).rows
    assert plain.tolist() == [1] and boosted.tolist() == [4]


def test_cart_items_never_come_back_even_when_boosted() -> None:
    ranker = _ranker()
    boost = Blend(buy_again=5.0).boost(np.array([30.0, 0, 0, 0, 0]), None)
    assert 0 not in ranker.rank(np.array([0, 1]), 4, boost=boost).rows.tolist()


def test_the_price_exponent_trades_probability_for_value() -> None:
    ranker = _ranker()
    cart = np.array([1, 3])  # 0 (price 1) goes with 1 more surely than 2 (price 50) with 3
    by_p = ranker.rank(cart, 1, exponent=0.0).rows
    by_value = ranker.rank(cart, 1, exponent=1.0).rows
    assert by_p.tolist() == [0] and by_value.tolist() == [2]
