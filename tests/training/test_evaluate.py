"""Offline evaluation: every metric on hand-computed cases, the holdout protocol, cross-sell."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from features.ids import IdIndex
from features.io import resolve_format
from features.split import chronological_split
from features.validate import load_events
from training.evaluate import (
    DEFAULT_KS,
    Holdout,
    build_holdout,
    evaluate_model,
    ranking_metrics,
    revenue_at_k,
)
from training.models import create_model

INV_LOG3 = 1.0 / math.log2(3)  # discount at position 2


def truth(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    """Build a binary users x items matrix from per-row item lists."""
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [j for items in rows for j in items]
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


# --- ranking_metrics ----------------------------------------------------------------------------


def test_ranking_metrics_single_user_hand_case() -> None:
    # recommended [3, 1, 2], relevant {1, 4}: one hit at position 2.
    # k=1: nothing -> every metric 0, coverage {3} = 1/5.
    # k=3: P = 1/3, R = 1/2, AP = (P@2 = 1/2) / min(3, 2) = 0.25,
    #      NDCG = (1/log2 3) / (1 + 1/log2 3), hit = 1, coverage {1, 2, 3} = 3/5.
    m = ranking_metrics(np.array([[3, 1, 2]]), truth([[1, 4]], 5), ks=(1, 3))
    assert m["precision_at_1"] == 0.0
    assert m["recall_at_1"] == 0.0
    assert m["map_at_1"] == 0.0
    assert m["ndcg_at_1"] == 0.0
    assert m["hit_rate_at_1"] == 0.0
    assert m["coverage_at_1"] == pytest.approx(1 / 5)
    assert m["precision_at_3"] == pytest.approx(1 / 3)
    assert m["recall_at_3"] == pytest.approx(1 / 2)
    assert m["map_at_3"] == pytest.approx(0.25)
    assert m["ndcg_at_3"] == pytest.approx(INV_LOG3 / (1 + INV_LOG3))
    assert m["hit_rate_at_3"] == 1.0
    assert m["coverage_at_3"] == pytest.approx(3 / 5)


def test_ranking_metrics_map_and_ndcg_with_several_hits() -> None:
    # recommended [1, 0, 2, 3], relevant {1, 2, 5}: hits at positions 1 and 3.
    # k=1: P = 1, R = 1/3, AP = 1 / min(1, 3) = 1, NDCG = 1.
    # k=4: P = 2/4, R = 2/3, AP = (P@1 + P@3) / min(4, 3) = (1 + 2/3) / 3 = 5/9,
    #      NDCG = (1 + 1/log2 4) / (1 + 1/log2 3 + 1/log2 4).
    m = ranking_metrics(np.array([[1, 0, 2, 3]]), truth([[1, 2, 5]], 6), ks=(1, 4))
    assert (m["precision_at_1"], m["map_at_1"], m["ndcg_at_1"]) == (1.0, 1.0, 1.0)
    assert m["recall_at_1"] == pytest.approx(1 / 3)
    assert m["precision_at_4"] == pytest.approx(0.5)
    assert m["recall_at_4"] == pytest.approx(2 / 3)
    assert m["map_at_4"] == pytest.approx(5 / 9)
    assert m["ndcg_at_4"] == pytest.approx(1.5 / (1 + INV_LOG3 + 0.5))


def test_ranking_metrics_averages_over_users() -> None:
    # user 0: [0, 1] vs {1}: P@2 = 1/2, R@2 = 1, AP@2 = (1/2) / 1 = 1/2, NDCG@2 = 1/log2 3.
    # user 1: [2, 3] vs {2, 3}: P@2 = 1, R@2 = 1, AP@2 = (1 + 1) / 2 = 1, NDCG@2 = 1.
    m = ranking_metrics(np.array([[0, 1], [2, 3]]), truth([[1], [2, 3]], 4), ks=(2,))
    assert m["precision_at_2"] == pytest.approx(0.75)
    assert m["recall_at_2"] == pytest.approx(1.0)
    assert m["map_at_2"] == pytest.approx(0.75)
    assert m["ndcg_at_2"] == pytest.approx((INV_LOG3 + 1) / 2)
    assert m["hit_rate_at_2"] == 1.0
    assert m["coverage_at_2"] == 1.0


def test_invalid_positions_never_hit_or_cover() -> None:
    # Position 1 holds relevant item 1 but its score was -inf: no hit anywhere;
    # coverage counts only the valid items {2, 0} -> 2/4.
    valid = np.array([[False, True, True]])
    m = ranking_metrics(np.array([[1, 2, 0]]), truth([[1]], 4), ks=(1, 3), valid=valid)
    assert all(
        m[f"{name}_at_{k}"] == 0.0
        for name in ("precision", "recall", "map", "ndcg", "hit_rate")
        for k in (1, 3)
    )
    assert m["coverage_at_3"] == pytest.approx(2 / 4)


def test_out_of_range_indexes_count_as_no_recommendation() -> None:
    # [-1, 7, 1] over 3 items: only position 3 is a real item, and it hits: P@3 = 1/3, AP@3 = 1/3.
    m = ranking_metrics(np.array([[-1, 7, 1]]), truth([[1]], 3), ks=(3,))
    assert m["precision_at_3"] == pytest.approx(1 / 3)
    assert m["map_at_3"] == pytest.approx(1 / 3)
    assert m["ndcg_at_3"] == pytest.approx(0.5)  # 1/log2(4)
    assert m["coverage_at_3"] == pytest.approx(1 / 3)


def test_repeated_item_counts_once() -> None:
    # [1, 1, 2] vs {1, 2}: the second 1 is no recommendation -> 2 hits, P@3 = 2/3, R@3 = 1,
    # AP@3 = (1 + 2/3) / 2 = 5/6.
    m = ranking_metrics(np.array([[1, 1, 2]]), truth([[1, 2]], 3), ks=(3,))
    assert m["precision_at_3"] == pytest.approx(2 / 3)
    assert m["recall_at_3"] == pytest.approx(1.0)
    assert m["map_at_3"] == pytest.approx(5 / 6)


def test_users_without_relevant_items_are_ignored() -> None:
    # Row 1 has no relevant item: the result equals row 0 alone, and row 1's items do not cover.
    alone = ranking_metrics(np.array([[3, 1, 2]]), truth([[1, 4]], 6), ks=(3,))
    both = ranking_metrics(np.array([[3, 1, 2], [5, 4, 0]]), truth([[1, 4], []], 6), ks=(3,))
    assert both == pytest.approx(alone)
    assert both["coverage_at_3"] == pytest.approx(3 / 6)


def test_short_lists_are_padded_with_no_recommendation() -> None:
    # [1] vs {1, 2} at k=2: 1 hit, P@2 = 1/2, R@2 = 1/2, AP@2 = 1 / 2.
    m = ranking_metrics(np.array([[1]]), truth([[1, 2]], 3), ks=(1, 2))
    assert m["precision_at_1"] == 1.0
    assert m["precision_at_2"] == pytest.approx(0.5)
    assert m["recall_at_2"] == pytest.approx(0.5)
    assert m["map_at_2"] == pytest.approx(0.5)


def test_coverage_uses_the_given_item_count() -> None:
    m = ranking_metrics(np.array([[0, 1]]), truth([[1]], 4), ks=(2,), n_items=10)
    assert m["coverage_at_2"] == pytest.approx(2 / 10)


def test_ranking_metrics_reports_every_metric_at_every_default_k() -> None:
    m = ranking_metrics(np.tile(np.arange(20), (2, 1)), truth([[0], [19]], 25))
    names = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage")
    assert set(m) == {f"{n}_at_{k}" for n in names for k in DEFAULT_KS}
    assert m["hit_rate_at_5"] == 0.5
    assert m["hit_rate_at_20"] == 1.0


def test_ranking_metrics_without_any_relevant_user_is_nan() -> None:
    m = ranking_metrics(np.array([[0, 1]]), truth([[]], 3), ks=(2,))
    assert math.isnan(m["precision_at_2"])
    assert m["coverage_at_2"] == 0.0


def test_ranking_metrics_rejects_misaligned_rows_and_bad_ks() -> None:
    with pytest.raises(ValueError, match="rows"):
        ranking_metrics(np.array([[0, 1]]), truth([[1], [0]], 3), ks=(2,))
    with pytest.raises(ValueError, match="ks"):
        ranking_metrics(np.array([[0, 1]]), truth([[1]], 3), ks=(0,))


# --- revenue_at_k -------------------------------------------------------------------------------


def test_revenue_at_k_hand_case() -> None:
    # row 0 held out item 0 (10) and item 3 (5); row 1 item 1 (2) and item 2 (8): total 25.
    # k=1: row 0 top [2] -> 0, row 1 top [1] -> 2: 2/25.
    # k=3: row 0 [2, 0, 1] -> 10, row 1 [1, 3, 0] -> 2: 12/25.
    value = sp.csr_matrix(np.array([[10.0, 0, 0, 5], [0, 2, 8, 0]]))
    rec = np.array([[2, 0, 1], [1, 3, 0]])
    assert revenue_at_k(rec, value, ks=(1, 3)) == pytest.approx(
        {"revenue_at_1": 2 / 25, "revenue_at_3": 12 / 25}
    )
    # Row 0's item 0 scored -inf: it earns nothing -> k=3: 2/25.
    valid = np.array([[True, False, True], [True, True, True]])
    assert revenue_at_k(rec, value, ks=(3,), valid=valid)["revenue_at_3"] == pytest.approx(2 / 25)


# --- build_holdout and evaluate_model -----------------------------------------------------------

#: Train views before the cutoff: popularity (distinct users) a=5, b=4, c=3, d=2, e=1.
TRAIN = {"u1": "abcde", "u2": "abcd", "u3": "abc", "u4": "ab", "u5": "a"}
TEST_ROWS = [
    "u3,d,2024-01-10 09:00:00,purchase,O10,1,4.0",  # new for u3: value 4
    "u3,e,2024-01-10 09:00:00,purchase,O10,2,3.0",  # new for u3: value 6
    "u4,e,2024-01-11 09:00:00,purchase,O11,2,1.5",  # new for u4: value 3
    "u4,a,2024-01-11 09:00:00,purchase,O11,1,9.0",  # u4 viewed a in train: dropped
    "u4,c,2024-01-11 08:00:00,view,,,",  # not a purchase
    "u2,a,2024-01-12 09:00:00,purchase,O12,1,9.0",  # seen: u2 has nothing left to evaluate
    "u6,a,2024-01-12 09:00:00,purchase,O13,1,9.0",  # unknown user: cold
    "u1,f,2024-01-13 09:00:00,purchase,O14,1,2.0",  # unknown item, known user: not a cold user
    "u7,f,2024-01-13 09:00:00,view,,,",  # unknown user and item: cold
]


@pytest.fixture
def split(tmp_path: Path):
    lines = ["user_id,item_id,timestamp,event_type,order_id,quantity,price"]
    for day, (user, items) in enumerate(TRAIN.items(), start=1):
        lines += [f"{user},{item},2024-01-0{day} 10:00:00,view,,," for item in items]
    path = tmp_path / "events.csv"
    path.write_text("\n".join([*lines, *TEST_ROWS]) + "\n")
    events = load_events(path, resolve_format(None, {}, None, None)).events
    return chronological_split(events, cutoff="2024-01-10")


def cells(matrix: sp.csr_matrix) -> dict[tuple[int, int], float]:
    coo = matrix.tocoo()
    return {(int(r), int(c)): float(v) for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)}


def test_build_holdout_aligns_truth_to_the_train_index(split) -> None:
    h = build_holdout(split)
    assert list(h.users.ids) == ["u1", "u2", "u3", "u4", "u5"]
    assert list(h.items.ids) == ["a", "b", "c", "d", "e"]
    assert h.train.shape == h.relevant.shape == h.value.shape == (5, 5)
    assert h.train.nnz == 15
    assert h.relevant.dtype == np.float32 and h.value.dtype == np.float64
    # (u3, d), (u3, e), (u4, e); (u4, a) and (u2, a) were seen in train and are dropped.
    assert cells(h.relevant) == {(2, 3): 1.0, (2, 4): 1.0, (3, 4): 1.0}
    assert cells(h.value) == {(2, 3): 4.0, (2, 4): 6.0, (3, 4): 3.0}
    assert h.eval_users.dtype == np.int64
    assert list(h.eval_users) == [2, 3]
    assert h.cold_users == 2  # u6 and u7; u1 is known


def test_build_holdout_uses_every_test_event_when_none_is_positive(split) -> None:
    # No cart events in the test: every warm test event counts; u4's view of c (no price) joins.
    h = build_holdout(split, positive="cart")
    assert cells(h.relevant) == {(2, 3): 1.0, (2, 4): 1.0, (3, 2): 1.0, (3, 4): 1.0}
    assert cells(h.value) == {(2, 3): 4.0, (2, 4): 6.0, (3, 4): 3.0}


def test_evaluate_model_with_popularity_matches_hand_computation(split) -> None:
    # Popular ranks unseen items a > b > c > d > e.
    # u3 (seen a, b, c) gets [d, e, -inf] vs {d, e}: hits 1, 1, -.
    #   P@1 = 1, P@3 = 2/3, R@1 = 1/2, R@3 = 1, AP@1 = 1, AP@3 = (1 + 1) / 2 = 1, NDCG = 1, 1.
    # u4 (seen a, b) gets [c, d, e] vs {e}: hit at 3.
    #   P@1 = 0, P@3 = 1/3, R@1 = 0, R@3 = 1, AP@3 = (1/3) / 1, NDCG@3 = 1/log2(4) = 1/2.
    # coverage@1 = {d, c} / 5, coverage@3 = {c, d, e} / 5.
    # revenue: total 4 + 6 + 3 = 13; @1 = 4 (u3's d) / 13, @3 = 13 / 13.
    h = build_holdout(split)
    model = create_model("popular")
    model.fit(h.train)
    expected = {
        "precision_at_1": 0.5,
        "precision_at_3": 0.5,
        "recall_at_1": 0.25,
        "recall_at_3": 1.0,
        "map_at_1": 0.5,
        "map_at_3": 2 / 3,
        "ndcg_at_1": 0.5,
        "ndcg_at_3": 0.75,
        "hit_rate_at_1": 0.5,
        "hit_rate_at_3": 1.0,
        "coverage_at_1": 0.4,
        "coverage_at_3": 0.6,
        "revenue_at_1": 4 / 13,
        "revenue_at_3": 1.0,
        "users_evaluated": 2,
        "cold_users": 2,
    }
    assert evaluate_model(model, h, ks=(1, 3)) == pytest.approx(expected)
    assert evaluate_model(model, h, ks=(1, 3), batch_size=1) == pytest.approx(expected)


def test_evaluate_model_rejects_a_model_of_another_catalog(split) -> None:
    h = build_holdout(split)
    model = create_model("popular")
    model.fit(sp.csr_matrix((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="items"):
        evaluate_model(model, h)


def test_evaluate_model_with_no_evaluated_users_reports_nan() -> None:
    empty = sp.csr_matrix((1, 2), dtype=np.float32)
    h = Holdout(
        empty,
        empty,
        empty,
        IdIndex.from_values(["u"]),
        IdIndex.from_values(["a", "b"]),
        np.zeros(0, np.int64),
        0,
    )
    model = create_model("popular")
    model.fit(empty)
    m = evaluate_model(model, h, ks=(1,))
    assert m["users_evaluated"] == 0
    assert math.isnan(m["precision_at_1"]) and math.isnan(m["revenue_at_1"])


def test_a_new_ranking_metric_is_one_entry_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    import scipy.sparse as sp

    from training import evaluate

    monkeypatch.setitem(evaluate.RANKING, "first_hit", lambda c: (c.found > 0).astype(float) * 2.0)
    recommended = np.array([[0, 1], [2, 3]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    out = evaluate.ranking_metrics(recommended, relevant, ks=(2,))
    assert out["first_hit_at_2"] == 2.0 and out["hit_rate_at_2"] == 1.0
