"""Rules and diversity after scoring: hide, scale (sign-aware), pin, and at most k per category."""

from __future__ import annotations

import numpy as np

from training.models.adjustment import Adjustment, reorder, scale, top_items

SCORES = np.array([5.0, 4.0, 3.0, 2.0, 1.0, -1.0, -2.0])
CATEGORIES = np.array([0, 0, 0, 1, 1, -1, 2])


def _adjust(**given: object) -> Adjustment:
    fields = {"hidden": np.zeros(0, np.int64), "scaled": np.zeros(0, np.int64), "factors": np.zeros(0)}
    fields |= {k: np.asarray(v) for k, v in given.items() if k != "pins"}
    return Adjustment(**fields, pins=given.get("pins", ()))  # type: ignore[arg-type]


def test_without_an_adjustment_the_best_scores_come_first_ties_to_the_lower_row() -> None:
    rows, values = top_items(np.array([1.0, 3.0, 3.0, 2.0]), 3)
    assert rows.tolist() == [1, 2, 3] and values.tolist() == [3.0, 3.0, 2.0]


def test_a_hidden_item_never_appears_and_the_next_one_takes_its_place() -> None:
    rows, _ = top_items(SCORES, 3, _adjust(hidden=[0, 2]))
    assert rows.tolist() == [1, 3, 4]


def test_a_boost_raises_and_a_bury_lowers_whatever_the_sign_of_the_score() -> None:
    assert scale(np.array([2.0, -2.0]), np.array([2.0, 2.0])).tolist() == [4.0, -1.0]
    rows, _ = top_items(SCORES, 7, _adjust(scaled=[0, 6], factors=[0.1, 4.0]))
    assert rows.tolist() == [1, 2, 3, 4, 0, 6, 5]  # 0 buried to 0.5; 6 boosted from -2 to -0.5


def test_a_pinned_item_stands_at_its_position_and_the_rest_keep_the_model_order() -> None:
    rows, values = top_items(SCORES, 4, _adjust(pins=((1, 6),)))
    assert rows.tolist() == [0, 6, 1, 2]
    assert values[1] == -2.0  # a pinned item reports its own score


def test_a_pin_never_brings_back_an_item_the_request_or_a_hide_left_out() -> None:
    filtered = SCORES.copy()
    filtered[6] = -np.inf  # a filter, the cart, or what the user has
    rows, _ = top_items(filtered, 3, _adjust(pins=((0, 6), (1, 4)), hidden=[4]))
    assert rows.tolist() == [0, 1, 2]


def test_max_per_category_skips_items_over_the_cap_but_never_items_without_a_category() -> None:
    rows, _ = top_items(SCORES, 7, categories=CATEGORIES, cap=1)
    assert rows.tolist() == [0, 3, 5, 6]
    rows, _ = top_items(SCORES, 3, categories=CATEGORIES, cap=2)
    assert rows.tolist() == [0, 1, 3]


def test_reorder_applies_the_same_rules_to_a_short_ranked_list() -> None:
    rows, keys = np.array([9, 8, 7, 6]), np.array([4.0, 3.0, 2.0, 1.0])
    adjustment = _adjust(hidden=[8], scaled=[6], factors=[10.0], pins=((2, 9),))
    at = reorder(rows, keys, 3, adjustment)
    assert rows[at].tolist() == [6, 7, 9]
    categories = np.zeros(10, dtype=np.int64)
    assert rows[reorder(rows, keys, 4, categories=categories, cap=2)].tolist() == [9, 8]


def _reference(scores: np.ndarray, n: int, adjustment: Adjustment) -> list[int]:
    """Rank every item the slow, obvious way: scale all, hide, sort, then put the pins in."""
    adjusted = scores.astype(np.float64).copy()
    adjusted[adjustment.scaled] = scale(adjusted[adjustment.scaled], adjustment.factors)
    usable = [
        (p, r) for p, r in adjustment.pins if np.isfinite(scores[r]) and r not in set(adjustment.hidden)
    ]
    adjusted[adjustment.hidden] = -np.inf
    adjusted[adjustment.pinned] = -np.inf
    order = [
        r for r in np.lexsort((np.arange(len(adjusted)), -adjusted)).tolist() if np.isfinite(adjusted[r])
    ]
    kept = order[: max(n - len(usable), 0)]
    for position, row in usable:
        kept.insert(min(position, len(kept)), row)
    return kept[:n]


def test_ranking_only_the_items_that_can_make_the_list_matches_ranking_them_all() -> None:
    rng = np.random.default_rng(0)
    for trial in range(200):
        size = int(rng.integers(5, 300))
        scores = rng.normal(size=size).round(2)  # rounded: ties happen
        scores[rng.random(size) < 0.1] = -np.inf
        rows = rng.permutation(size)
        scaled = np.sort(rows[: rng.integers(0, size // 2 + 1)])
        factors = rng.choice([0.2, 0.5, 2.0, 5.0, 50.0], len(scaled))
        hidden = rows[size // 2 : size // 2 + rng.integers(0, 5)]
        pins = tuple((int(p), int(r)) for p, r in zip(rng.integers(0, 8, 2), rows[-2:], strict=True))
        adjustment = Adjustment(hidden=hidden, scaled=scaled, factors=factors, pins=tuple(sorted(pins)))
        n = int(rng.integers(1, 20))
        assert top_items(scores, n, adjustment)[0].tolist() == _reference(scores, n, adjustment), trial
