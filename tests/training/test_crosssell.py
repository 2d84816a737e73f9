"""Cross-sell evaluation: held-out carts through the serving ranker, calibration, and the choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from features.baskets import Baskets
from features.dataset import Dataset
from training.crosssell import choose_cart_model
from training.heldout import fit_calibration, hold_out, score_carts
from training.job import TrainConfig, cart_data, split_events
from training.models.cart import create_cart_model
from training.models.cart_ranking import CartRanker


def truth(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    cells = [(b, i) for b, items in enumerate(rows) for i in items]
    r, c = zip(*cells, strict=True)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), n_items))


def baskets_of(rows: list[list[int]], n_items: int) -> Baskets:
    n = len(rows)
    return Baskets(truth(rows, n_items), np.full(n, -1, np.int32), np.zeros(n, np.int64), np.zeros(n))


#: Item-item weights: 0 <-> 1 strongly; 2 and 3 both rank 4 then 0 before each other; 4 and 5
#: say nothing of each other. Every held-out choice therefore gives the same outcome.
W = np.zeros((6, 6))
W[0, 1] = W[1, 0] = 5.0
W[2] = [2, 0, 0, 1, 3, 0]
W[3] = [2, 0, 1, 0, 3, 0]
PRICES = np.array([10.0, 10.0, 4.0, 4.0, np.nan, np.nan])


def hand_ranker() -> CartRanker:
    model = create_cart_model("cooccurrence")
    model.restore({"weights": sp.csr_matrix(W), "prior": np.zeros(6)})
    return CartRanker(model, PRICES, np.ones(6, dtype=bool), sp.csr_matrix((6, 6), dtype=bool), 0.0)


def test_score_carts_hand_case() -> None:
    # {0, 1}: the other item is first -> hit at 1, price 10.
    # {2, 3}: cart {2} ranks 4, 0, 3; cart {3} ranks 4, 0, 2 -> hit at 3, price 4.
    # {3}: fewer than 2 items, skipped.  {4, 5}: 5 ties with 0..3 and loses to lower rows -> never.
    baskets = baskets_of([[0, 1], [2, 3], [3], [4, 5]], 6)
    expected = {
        "crosssell_hit_at_1": 1 / 3,
        "crosssell_hit_at_2": 1 / 3,
        "crosssell_hit_at_3": 2 / 3,
        "crosssell_revenue_at_1": 10 / 14,
        "crosssell_revenue_at_2": 10 / 14,
        "crosssell_revenue_at_3": 1.0,
        "crosssell_baskets": 3,
    }
    for seed in range(5):
        assert score_carts(hand_ranker(), hold_out(baskets, seed), (1, 2, 3)) == pytest.approx(expected)


def test_the_held_out_item_is_random_but_deterministic_by_seed() -> None:
    baskets = baskets_of([[0, 1]] * 200, 2)
    first = hold_out(baskets, 0).held.tolist()
    assert first == hold_out(baskets, 0).held.tolist()
    assert first != hold_out(baskets, 1).held.tolist()
    assert 60 < first.count(0) < 140  # uniform over the two items


def test_calibration_gives_rising_probabilities_that_add_up_sensibly() -> None:
    rng = np.random.default_rng(3)
    rows = [sorted({int(a), int(a) + 1}) for a in rng.integers(0, 19, 400) if a % 2 == 0]
    baskets = baskets_of(rows, 20)
    model = create_cart_model("cosine", min_count=1)
    model.fit(baskets.matrix, baskets.timestamp)
    a, b = fit_calibration(model, hold_out(baskets, 0))
    model.calibration = (a, b)
    assert a > 0
    p = model.probability(model.score_dense(np.array([0])))
    assert p[1] == p.max() and 0.5 < p[1] < 1.0  # the partner is nearly certain, and nothing else is


def test_choose_cart_model_tunes_on_validation_and_scores_every_kind_on_test(dataset: Dataset) -> None:
    config = TrainConfig(cart_models=("popular", "confidence", "ease"))
    split = split_events(dataset.events, config)
    assert split.cutoff is not None
    found = choose_cart_model(
        cart_data(dataset, config, split.cutoff), split.cutoff, kinds=config.cart_models
    )
    assert set(found.test) == {"popular", "confidence", "ease"}
    assert found.chosen.kind == max(found.choices.values(), key=lambda c: c.objective).kind
    assert found.test[found.chosen.kind]["crosssell_hit_at_10"] > found.test["popular"]["crosssell_hit_at_10"]
    assert pd.Timestamp(found.validation_cut) < split.cutoff
    assert found.counts["test_carts"] > 0 and found.counts["validation_carts"] > 0
    assert set(found.returning) >= {"popular", "confidence", "ease"}
