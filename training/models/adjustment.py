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

from dataclasses import dataclass, field

import numpy as np

from training.models.base import best_of

__all__ = [
    "NO_ADJUSTMENT",
    "Adjustment",
    "applicable",
    "capped",
    "reorder",
    "scale",
    "top_items",
    "under_cap",
    "with_pins",
]


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
        return np.array([row for _, row in self.pins], dtype=np.int64)


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
    hidden = set(adjustment.hidden.tolist())
    pins = zip(adjustment.pins, usable.tolist(), strict=True)
    return [(position, row) for (position, row), ok in pins if ok and row not in hidden]


def top_items(
    scores: np.ndarray,
    n: int,
    adjustment: Adjustment = NO_ADJUSTMENT,
    categories: np.ndarray | None = None,
    cap: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the best ``n`` rows of dense scores and their (scaled) scores, adjusted and capped.

    ``-inf`` never ranks. ``scores`` is not modified.
    """
    pins: list[tuple[int, int]] = []
    if adjustment.active:
        scores = np.array(scores, dtype=np.float64, copy=True)
        pins = applicable(adjustment, np.isfinite(scores[adjustment.pinned]))
        scores[adjustment.hidden] = -np.inf
        scores[adjustment.scaled] = scale(scores[adjustment.scaled], adjustment.factors)
        pinned_scores = scores[adjustment.pinned]
        scores[adjustment.pinned] = -np.inf
    want = max(n - len(pins), 0)
    k = want
    while True:
        rows = best_of(scores, k)
        rows = rows[np.isfinite(scores[rows])]
        kept = capped(rows, want, categories, cap)
        if len(kept) >= want or len(rows) < k or k >= len(scores):
            break
        k = min(2 * k + 8, len(scores))
    if pins:
        kept = with_pins(kept, pins)
        scores[adjustment.pinned] = pinned_scores  # a pinned item reports its own (scaled) score
    return kept[:n], scores[kept[:n]]


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
