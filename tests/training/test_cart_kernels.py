"""The compiled cart loops agree with plain numpy and leave their work arrays clean."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from training.models.cart_kernels import anchors, explain, gather, scratch, select

N_ITEMS = 40


def _weights(seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((N_ITEMS, N_ITEMS)) * (rng.random((N_ITEMS, N_ITEMS)) < 0.2)
    dense[:, 7] = np.where(dense[:, 7] > 0, 0.5, 0.0)  # equal cells: ties
    np.fill_diagonal(dense, 0.0)
    return sp.csr_matrix(dense.astype(np.float32))


def _clean(n: int) -> bool:
    work = scratch(n)
    return not work.flags.any() and not work.marks.any() and bool((work.slots == -1).all())


@pytest.mark.parametrize("use_max", [False, True])
def test_gather_sums_or_takes_the_max_of_each_touched_item(use_max: bool) -> None:
    w, rows = _weights(1), np.array([3, 11, 20], dtype=np.int64)
    work = scratch(N_ITEMS)
    touched, agg, which, _ = gather(w.indptr, w.indices, w.data, rows, use_max, work.values, work.flags)
    dense = w.toarray()[rows].astype(np.float64)
    expected = np.where(dense > 0, dense, -np.inf).max(axis=0) if use_max else dense.sum(axis=0)
    assert sorted(touched.tolist()) == np.flatnonzero((dense > 0).any(axis=0)).tolist()
    assert agg == pytest.approx(expected[touched])
    assert rows[which].tolist() == np.repeat(rows, np.diff(w.indptr)[rows]).tolist()
    assert _clean(N_ITEMS)


def test_select_ranks_like_a_plain_sort_with_ties_stock_and_substitutes() -> None:
    rng = np.random.default_rng(2)
    price = np.round(rng.uniform(1, 5, N_ITEMS), 0)  # few distinct prices: ties in P x price
    in_stock = rng.random(N_ITEMS) > 0.2
    subs = sp.csr_matrix((rng.random((N_ITEMS, N_ITEMS)) < 0.05).astype(bool))
    cart = np.array([1, 5, 9], dtype=np.int64)
    candidates = np.array([30, 2, 17, 5, 8, 22, 13], dtype=np.int64)  # 5 is in the cart
    prob = np.array([0.5, 0.5, 0.25, 0.9, 0.125, 0.5, 0.25])
    idle = np.full(N_ITEMS, 0.01)
    idle[::3] = 0.02
    for g, leave_out in ((0.0, True), (1.0, True), (1.0, False)):
        stocked = np.flatnonzero(in_stock)
        order = stocked[np.lexsort((stocked, -(idle[stocked] * price[stocked] ** g)))]
        rows, rank, p, left = select(
            candidates, prob, cart, subs.indptr, subs.indices, leave_out, in_stock, price, g, order, idle, 12,
            scratch(N_ITEMS).marks, np.ones(N_ITEMS), np.zeros(0, dtype=np.int64),
        )  # fmt: skip
        full = idle.copy()
        full[candidates] = prob
        plain = full * price**g
        blocked = set(cart.tolist()) | (set(subs[cart].indices.tolist()) if leave_out else set())
        plain[list(blocked)] = -np.inf
        plain[~in_stock] = -np.inf
        expected = np.lexsort((np.arange(N_ITEMS), -plain))[:12]
        assert rows.tolist() == expected.tolist()
        assert rank == pytest.approx(plain[expected])
        assert p == pytest.approx(full[expected])
        assert left == (len(set(subs[cart].indices.tolist())) if leave_out else 0)
        assert _clean(N_ITEMS)


def test_anchors_and_explain_name_the_strongest_cart_item_and_its_counts() -> None:
    w, cart = _weights(3), np.array([4, 7, 12], dtype=np.int64)
    work = scratch(N_ITEMS)
    touched, _, which, cells = gather(w.indptr, w.indices, w.data, cart, False, work.values, work.flags)
    chosen = touched[:5]
    found = anchors(chosen, cart, which, cells, w.indices, w.data, work.slots)
    dense = w.toarray()[cart]
    assert found.tolist() == [int(cart[np.argmax(dense[:, j])]) for j in chosen]  # argmax: first of ties
    pairs = sp.csr_matrix(np.arange(N_ITEMS * N_ITEMS, dtype=np.float32).reshape(N_ITEMS, N_ITEMS) % 5)
    item_counts = np.full(N_ITEMS, 10.0)
    prob, rank, price = np.full(5, 0.25), np.full(5, 0.5), np.full(N_ITEMS, 2.0)
    stats, counts = explain(
        chosen, found, prob, rank, price, pairs.indptr, pairs.indices, pairs.data, item_counts, 100
    )
    expected = pairs.toarray()[found, chosen]
    assert counts.tolist() == expected.tolist()
    assert stats[2].tolist() == pytest.approx(expected / 100)  # support
    assert stats[3].tolist() == pytest.approx(expected / 10)  # confidence
    assert stats[4].tolist() == pytest.approx(np.where(expected > 0, (expected / 10) / 0.1, 0.0))  # lift
    assert stats[1].tolist() == [0.5] * 5  # P x price
    assert _clean(N_ITEMS)
