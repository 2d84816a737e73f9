"""What rules and the storefront do to a ranking after scoring: hide, scale, pin, diversify.

An ``Adjustment`` lists items that never appear (``hidden``), items whose score is scaled
(``scaled`` with ``factors``: a boost > 1, a bury < 1) and items put at fixed positions (``pins``,
0-based, in position order). Scaling is sign-aware, so a boost always raises an item whatever the
sign of its score: ``s x f`` for ``s >= 0`` and ``s / f`` for ``s < 0``. Pinned items are taken out
of the ranking and put at their positions afterwards (at the end when the list is shorter), so the
rest keep the model's order; a pin never brings back an item the request itself left out (a
filter, the cart, what the user has, out of stock: a score of ``-inf``) nor a hidden one.

``cap`` is the storefront's ``max_per_category``: down the ranking, an item whose category already
holds ``cap`` items is skipped and the next one taken; items without a category (code ``-1``) and
pinned items are never capped. Ties keep the lower item row first, as ``best_of`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np

from training.models.base import best_of

__all__ = [
    "DENSE_SHARE",
    "NO_ADJUSTMENT",
    "Adjustment",
    "applicable",
    "capped",
    "ranked",
    "reorder",
    "scale",
    "top_items",
    "under_cap",
    "with_pins",
]


T = TypeVar("T")
DENSE_SHARE = 8  # scaling more than 1/8 of a catalog is cheaper as one pass over all of it


def _rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Adjustment:
    """Items hidden, scaled and pinned in one ranking (item rows of one catalog)."""

    hidden: np.ndarray = field(default_factory=_rows)  # rows
    scaled: np.ndarray = field(default_factory=_rows)  # sorted unique rows...
    factors: np.ndarray = field(default_factory=lambda: np.zeros(0))  # ...and each one's factor
    pins: tuple[tuple[int, int], ...] = ()  # (position, row), by position

    @property
    def active(self) -> bool:
        """Return whether this adjustment changes anything."""
        return bool(len(self.hidden) or len(self.scaled) or self.pins)

    @property
    def pinned(self) -> np.ndarray:
        """Return the pinned rows."""
        return self.memo("pinned", lambda: np.array([row for _, row in self.pins], dtype=np.int64))

    @property
    def hidden_set(self) -> frozenset[int]:
        """Return the hidden rows as a set."""
        return self.memo("hidden set", lambda: frozenset(self.hidden.tolist()))

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """Return what ``make`` builds for ``key``, built once per adjustment (a cache on a frozen record)."""
        cache: dict[Hashable, Any] = self.__dict__.setdefault("_memo", {})
        if key not in cache:
            cache[key] = make()
        return cast(T, cache[key])

    def dense(self, n_items: int, dtype: np.dtype[np.floating]) -> tuple[np.ndarray, np.ndarray]:
        """Return every item's factor and its reciprocal (1 where unscaled), built once per size and type."""

        def make() -> tuple[np.ndarray, np.ndarray]:
            up = np.ones(n_items)
            up[self.scaled] = self.factors
            return up.astype(dtype), (1.0 / up).astype(dtype)

        return self.memo(("dense", n_items, dtype.str), make)

    @property
    def boosted(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the rows a rule scales up (they may rise into any list) and their factors."""
        return self.memo("boosted", lambda: (self.scaled[self.factors > 1], self.factors[self.factors > 1]))

    def blocked(self, n_items: int) -> np.ndarray:
        """Return a mask of the rows that never rank on their own: hidden or pinned."""

        def make() -> np.ndarray:
            mask = np.zeros(n_items, dtype=bool)
            mask[self.hidden] = True
            mask[self.pinned] = True
            return mask

        return self.memo(("blocked", n_items), make)

    @property
    def factor_of(self) -> dict[int, float]:
        """Return each scaled row's factor."""
        return self.memo(
            "factor_of", lambda: dict(zip(self.scaled.tolist(), self.factors.tolist(), strict=True))
        )

    def scaled_scores(self, scores: np.ndarray) -> np.ndarray:
        """Return a copy of dense float scores with the scaling applied (sign-aware), in their own type."""
        scores = np.asarray(scores)
        if scores.dtype not in (np.float32, np.float64):
            scores = scores.astype(np.float64)
        if len(self.scaled) * DENSE_SHARE > len(scores):  # many scaled items: one pass over all of them
            up, down = self.dense(len(scores), scores.dtype)
            out = np.where(scores >= 0, up, down)
            out *= scores
            return out
        out = scores.copy()
        out[self.scaled] = scale(out[self.scaled], self.factors)
        return out


NO_ADJUSTMENT = Adjustment()


def scale(scores: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Return scores multiplied by ``factors`` (divided where a score is negative)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.where(scores >= 0, scores * factors, scores / factors)


def under_cap(codes: np.ndarray, cap: int) -> np.ndarray:
    """Return a mask of ranked entries whose category holds fewer than ``cap`` before them."""
    order = np.argsort(codes, kind="stable")  # within a category, ranked order is kept
    starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
    within = np.empty(len(codes), dtype=np.int64)
    within[order] = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    return (within < cap) | (codes < 0)


def capped(rows: np.ndarray, n: int, categories: np.ndarray | None, cap: int | None) -> np.ndarray:
    """Return the first ``n`` of ranked ``rows`` with at most ``cap`` of any one category."""
    if cap is None or categories is None or not len(rows):
        return rows[:n]
    return rows[under_cap(categories[rows], cap)][:n]


def with_pins(rows: np.ndarray, pins: list[tuple[int, int]]) -> np.ndarray:
    """Return ranked ``rows`` with each pinned row inserted at its position."""
    out = rows.tolist()
    for position, row in pins:
        out.insert(min(position, len(out)), row)
    return np.array(out, dtype=np.int64)


def applicable(adjustment: Adjustment, usable: np.ndarray) -> list[tuple[int, int]]:
    """Return the pins whose rows the request allows (``usable``: a finite score) and no rule hides."""
    hidden = adjustment.hidden_set
    pins = zip(adjustment.pins, usable.tolist(), strict=True)
    return [(position, row) for (position, row), ok in pins if ok and row not in hidden]


def _plain_top(
    scores: np.ndarray, n: int, categories: np.ndarray | None, cap: int | None
) -> tuple[np.ndarray, int]:
    """Return the best ``n`` finite rows (capped), and how deep the raw ranking had to go."""
    k = n
    while True:
        rows = best_of(scores, k)
        rows = rows[np.isfinite(scores[rows])]
        kept = capped(rows, n, categories, cap)
        if len(kept) >= n or len(rows) < k or k >= len(scores):
            return kept, k
        k = min(2 * k + 8, len(scores))


def ranked(
    scores: np.ndarray,
    n: int,
    adjustment: Adjustment = NO_ADJUSTMENT,
    categories: np.ndarray | None = None,
    cap: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the best ``n`` rows of dense scores, their (scaled) scores, and the rows without rules.

    ``-inf`` never ranks; ``scores`` is not modified. Only items that can make the list are
    scaled: the raw ranking's head and every boosted item (a bury only lowers, a hide only
    removes); the head grows until the items outside it cannot beat the list.
    """
    if not adjustment.active:
        rows, _ = _plain_top(scores, n, categories, cap)
        return rows, scores[rows], rows
    blocked = adjustment.blocked(len(scores))
    pins = applicable(adjustment, np.isfinite(scores[adjustment.pinned]))
    want = max(n - len(pins), 0)
    boosted, factors = adjustment.boosted
    lifted = scale(scores[boosted], factors)
    usable = np.isfinite(lifted) & ~blocked[boosted]
    boosted, lifted = boosted[usable], lifted[usable]
    k = max(2 * n, 16)
    plain: np.ndarray | None = None
    while True:
        head = best_of(scores, k)
        head = head[np.isfinite(scores[head])]
        if plain is None:  # the head holds the list without rules, when the cap leaves enough of it
            plain = capped(head, n, categories, cap)
            if len(plain) < n and len(head) == k:
                plain, _ = _plain_top(scores, n, categories, cap)
        edge = scores[head[-1]] if len(head) == k else -np.inf  # nothing outside the head scores above it
        best = best_of(lifted, k) if len(lifted) > k else np.arange(len(lifted))  # boosted that can make it
        if len(best) == k < len(lifted):
            edge = max(edge, lifted[best[-1]])
        pool = list(dict.fromkeys([*head[~blocked[head]].tolist(), *boosted[best].tolist()]))
        scaled = _scaled(pool, scores[pool].tolist(), adjustment.factor_of)  # a few dozen: plain Python
        order = np.array(sorted(pool, key=lambda row: (-scaled[row], row)), dtype=np.int64)
        kept = capped(order, want, categories, cap)
        last = scaled[int(kept[-1])] if len(kept) else np.inf
        if (len(kept) >= want and last > edge) or len(head) < k or k >= len(scores):
            break
        k = min(2 * k, len(scores))
    final = (with_pins(kept, pins) if pins else kept)[:n]
    values = _scaled(final.tolist(), scores[final].tolist(), adjustment.factor_of)
    assert plain is not None  # set on the first pass
    return final, np.array([values[row] for row in final.tolist()]), plain


def _scaled(rows: list[int], values: list[float], factor_of: dict[int, float]) -> dict[int, float]:
    """Return each row's score with its factor applied (sign-aware), for a few rows."""
    out = {}
    for row, value in zip(rows, values, strict=True):
        f = factor_of.get(row, 1.0)
        out[row] = value * f if value >= 0 else value / f
    return out


def top_items(
    scores: np.ndarray,
    n: int,
    adjustment: Adjustment = NO_ADJUSTMENT,
    categories: np.ndarray | None = None,
    cap: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the best ``n`` rows of dense scores and their (scaled) scores, adjusted and capped."""
    rows, values, _ = ranked(scores, n, adjustment, categories, cap)
    return rows, values


def reorder(
    rows: np.ndarray,
    keys: np.ndarray,
    n: int,
    adjustment: Adjustment = NO_ADJUSTMENT,
    categories: np.ndarray | None = None,
    cap: int | None = None,
) -> np.ndarray:
    """Return positions into ``rows`` (ranked best first, ``keys`` their scores) after adjusting.

    For short ranked lists (an item's partners): scaled keys re-sort the list (ties keep the
    given order), hidden rows drop out, pins among the rows move to their positions, then the cap.
    """
    rows = np.asarray(rows, dtype=np.int64)
    at = np.arange(len(rows))
    if not adjustment.active and cap is None:
        return at[:n]
    scaled = np.flatnonzero(np.isin(rows, adjustment.scaled))
    if len(scaled):
        keys = np.asarray(keys, dtype=np.float64).copy()
        where = np.searchsorted(adjustment.scaled, rows[scaled])  # ``scaled`` is sorted
        keys[scaled] = scale(keys[scaled], adjustment.factors[where])
        at = np.lexsort((at, -keys))
    at = at[~np.isin(rows[at], adjustment.hidden)]
    pinned = np.isin(rows[at], adjustment.pinned)
    position = {row: i for i, row in enumerate(rows.tolist())}
    pins = applicable(adjustment, np.isin(adjustment.pinned, rows))
    rest = at[~pinned]
    if cap is not None and categories is not None and len(rest):
        rest = rest[under_cap(categories[rows[rest]], cap)]
    return with_pins(rest, [(p, position[r]) for p, r in pins])[:n]
