"""The scoring object: per-user recommendations, session fold-in, similar items.

It holds one loaded model and precomputes what every request needs (item arrays aligned to the
index, the popularity order); requests then cost a few numpy operations over the item axis.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.association import Associations, pair_statistics
from features.kpis import ItemPrices
from service.cache_keys import digest
from service.config import Settings
from service.errors import InvalidRequest, UnknownItem
from service.live import LiveHistory
from service.loading import LoadedModel
from service.rules import PLAIN, ListRules
from service.trending import TrendFeed

__all__ = ["Catalog", "Filters", "Ranking", "Scorer", "day_text"]


SimilarKind = Literal["also_bought", "also_viewed", "similar"]
#: Ranked rows, their scores, and the ids of the rules that changed them.
Ranking = tuple[np.ndarray, np.ndarray, list[str]]


@dataclass(frozen=True)
class Filters:
    """What the storefront allows on the page."""

    category: str | None = None
    exclude: tuple[str, ...] = ()
    in_stock_only: bool = False
    min_price: float | None = None
    max_price: float | None = None

    def key(self) -> str:
        """Return a stable digest for cache keys ('-' when no filter is set)."""
        if self == Filters():
            return "-"
        parts = [self.category, sorted(self.exclude), self.in_stock_only, self.min_price, self.max_price]
        return digest(parts)


class Catalog:
    """Item facts aligned to the model's item index."""

    def __init__(self, ids: np.ndarray, meta: pd.DataFrame) -> None:
        self.ids = ids
        self.names = meta["name"].astype(str).to_numpy(dtype=object)
        self.categories = meta["category"].fillna("").astype(str).to_numpy(dtype=object)
        self.prices = meta["price"].to_numpy(dtype=np.float64)
        #: What each item costs the shop (NaN where unknown); ``has_costs`` when any is known.
        self.costs = meta["cost"].to_numpy(dtype=np.float64) if "cost" in meta else np.full(len(ids), np.nan)
        self.has_costs = bool(np.isfinite(self.costs).any())
        #: List prices and costs by item id, for the shop's discount rate (``features.kpis``).
        self.item_prices = ItemPrices(pd.Index(self.ids.astype(str)), self.prices, self.costs)
        self.in_stock = meta["in_stock"].fillna(True).to_numpy(dtype=bool)
        self.lookup = {str(item): i for i, item in enumerate(ids)}
        codes, self.category_names = pd.factorize(pd.Series(self.categories))
        self.category_codes = np.asarray(codes, dtype=np.int64)
        self.category_lookup = {str(name): i for i, name in enumerate(self.category_names)}
        #: Category codes for ``max_per_category``: -1 for an item without a category (never capped).
        self.cap_codes = np.where(self.categories == "", -1, self.category_codes)
        prices = [None if np.isnan(p) else round(float(p), 2) for p in self.prices.tolist()]
        self.facts = [  # built once, read-only: describing an item is then a dict copy
            {"item_id": str(i), "name": name, "category": cat or None, "price": price}
            for i, name, cat, price in zip(
                self.ids.tolist(), self.names.tolist(), self.categories.tolist(), prices, strict=True
            )
        ]

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, item_ids: list[str] | tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
        """Return the rows of known ids (in order, deduplicated) and the unknown ids."""
        rows, unknown = [], []
        for item_id in item_ids:
            row = self.lookup.get(item_id)
            (unknown.append(item_id) if row is None else rows.append(row))
        return np.array(list(dict.fromkeys(rows)), dtype=np.int64), unknown

    def allowed(self, filters: Filters) -> np.ndarray | None:
        """Return a mask of items the filters allow, or None when nothing is filtered."""
        if filters == Filters():
            return None
        mask = np.ones(len(self.ids), dtype=bool)
        if filters.category is not None:
            code = self.category_lookup.get(filters.category)
            mask &= self.category_codes == (-2 if code is None else code)
        if filters.in_stock_only:
            mask &= self.in_stock
        if filters.min_price is not None:
            mask &= self.prices >= filters.min_price
        if filters.max_price is not None:
            mask &= self.prices <= filters.max_price
        if filters.exclude:
            mask[self.index(list(filters.exclude))[0]] = False
        return mask

    def leaving_out(self, allowed: np.ndarray | None, item_ids: Iterable[str]) -> np.ndarray | None:
        """Return ``allowed`` (None: every item) with ``item_ids`` left out."""
        rows, _ = self.index(sorted(item_ids))
        if not len(rows):
            return allowed
        mask = np.ones(len(self.ids), dtype=bool) if allowed is None else allowed.copy()
        mask[rows] = False
        return mask

    def describe(self, row: int) -> dict[str, Any]:
        """Return the item's public facts (a fresh dict)."""
        return dict(self.facts[row])


class Scorer:
    """Everything the read endpoints compute, for one loaded model."""

    def __init__(self, loaded: LoadedModel, settings: Settings, variant: str = "default") -> None:
        artifact = loaded.artifact
        self.loaded, self.settings, self.variant = loaded, settings, variant
        self.model, self.version = loaded.model, loaded.version
        self.catalog = Catalog(artifact.items.ids, artifact.item_meta)
        self.users = artifact.users
        self.history = artifact.history
        self.popular_order = np.argsort(-artifact.popularity, kind="stable")
        self.session_weight = artifact.manifest.weights["cart"]  # a session's items count as carted
        self.live_weights = artifact.manifest.live_weights  # live events count as training counted them
        self.copurchase: Associations = artifact.copurchase
        self.coview: Associations | None = artifact.coview
        self.trend = TrendFeed(self.catalog.lookup, len(self.catalog), artifact.trend)
        self.dismissed = artifact.dismissed  # users x items: what each known shopper dismissed

    def dismissed_of(self, user_id: str | None, live: LiveHistory) -> set[str]:
        """Return the items a shopper dismissed: in the training data (known users) and live."""
        found = set(live.dismissed)
        row = None if user_id is None else self.users.get(user_id)
        if row is not None and self.dismissed is not None:
            d = self.dismissed
            found.update(self.catalog.ids[d.indices[d.indptr[row] : d.indptr[row + 1]]].tolist())
        return found

    def new_recommendation_id(self, placement: str | None = None, channel: str | None = None) -> str:
        """Return a fresh id carrying the variant, placement and channel: events are attributed by it.

        ``{variant}.{placement}.{channel}.{32 hex}``, ``-`` for a placement or channel not given.
        """
        return f"{self.variant}.{placement or '-'}.{channel or '-'}.{secrets.token_hex(16)}"

    def _live_row(self, live: LiveHistory) -> sp.csr_matrix:
        """Return the live weights as a one-row history over the model's items."""
        weighted = live.weights(self.live_weights)
        rows, _ = self.catalog.index(list(weighted))
        weights = [weighted[str(self.catalog.ids[r])] for r in rows]
        return sp.csr_matrix(
            (np.asarray(weights, np.float32), (np.zeros(len(rows), int), rows)), shape=(1, len(self.catalog))
        )

    def envelope(
        self, items: list[dict[str, Any]], source: str, applied: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Wrap answer items as every recommendation answer is sent (precompute writes the same)."""
        return {
            "items": items,
            "source": source,
            "model_version": self.version,
            "variant": self.variant,
            "recommendation_id": self.new_recommendation_id(),
            "rules_applied": applied or [],
            **extra,
        }

    def _popular(self, n: int, allowed: np.ndarray | None, shape: ListRules) -> Ranking:
        popularity = self.loaded.artifact.popularity
        if shape.active or shape.cap is not None:
            scores = popularity.astype(np.float64)
            if allowed is not None:
                scores[~allowed] = -np.inf
            return shape.top(scores, n, self.catalog.cap_codes)
        order = self.popular_order
        rows = (order if allowed is None else order[allowed[order]])[:n]
        return rows, popularity[rows].astype(np.float32), []

    def _rank(
        self,
        history: sp.csr_matrix,
        user_idx: np.ndarray | None,
        n: int,
        allowed: np.ndarray | None,
        shape: ListRules,
    ) -> Ranking:
        scores = np.asarray(self.model.score(history, user_idx)[0], dtype=np.float32)  # a fresh row
        scores[history.indices] = -np.inf
        if allowed is not None:
            scores[~allowed] = -np.inf
        return shape.top(scores, n, self.catalog.cap_codes)

    def history_row(self, row: int) -> sp.csr_matrix:
        """Return one user's history row without scipy's fancy indexing."""
        h = self.history
        start, end = h.indptr[row], h.indptr[row + 1]
        return sp.csr_matrix(
            (h.data[start:end], h.indices[start:end], np.array([0, end - start])), shape=(1, h.shape[1])
        )

    def ranked_items(
        self, rows: np.ndarray, scores: np.ndarray, history: sp.csr_matrix | None, explain: bool
    ) -> list[dict[str, Any]]:
        """Describe ranked rows with their scores (and, with ``explain``, the history behind each)."""
        items = []
        for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
            item = {**self.catalog.facts[row], "score": round(float(score), 6)}
            if explain and history is not None and history.nnz:
                item["because"] = self._because(history, row)
            items.append(item)
        return items

    def _because(self, history: sp.csr_matrix, row: int, top: int = 3) -> list[dict[str, Any]]:
        """Return the history items that add most to ``row``'s score."""
        idx, parts = self.model.contributions(history, row)
        order = np.argsort(-parts)[:top]
        return [
            {**self.catalog.describe(int(idx[i])), "contribution": round(float(parts[i]), 6)}
            for i in order
            if parts[i] > 0
        ]

    def for_user(
        self,
        user_id: str,
        n: int,
        filters: Filters,
        explain: bool = False,
        live: LiveHistory | None = None,
        shape: ListRules = PLAIN,
    ) -> dict[str, Any]:
        """Recommend for a known user, or from an unknown user's live history; else the popular list.

        Items the user carted or bought since training (``live.owned``) are left out at once, and
        items they dismissed (``live.dismissed``) are never shown to them again.
        """
        live = live or LiveHistory()
        left_out = live.owned | self.dismissed_of(user_id, live)
        allowed = self.catalog.leaving_out(self.catalog.allowed(filters), left_out)
        row = self.users.get(user_id)
        if row is not None:
            history = self.history_row(row)
            rows, scores, applied = self._rank(history, np.array([row]), n, allowed, shape)
            return self.envelope(self.ranked_items(rows, scores, history, explain), "personalized", applied)
        if live:
            history = self._live_row(live)
            if history.nnz:
                rows, scores, applied = self._rank(history, None, n, allowed, shape)
                return self.envelope(self.ranked_items(rows, scores, history, explain), "live", applied)
        return self._cold(n, allowed, shape)

    def _cold(self, n: int, allowed: np.ndarray | None, shape: ListRules) -> dict[str, Any]:
        """Answer someone nothing is known about: trending items when ``n`` trend, else the popular list."""
        scores = self.trend.scores(self.settings.trending_window_days)[0].copy()
        if allowed is not None:
            scores[~allowed] = -np.inf
        rows, values, applied = shape.top(scores, n, self.catalog.cap_codes)
        if len(rows) >= n:
            return self.envelope(self.ranked_items(rows, values, None, False), "trending", applied)
        rows, values, applied = self._popular(n, allowed, shape)
        return self.envelope(self.ranked_items(rows, values, None, False), "popular", applied)

    def trending(
        self,
        n: int,
        category: str | None,
        window: int,
        shape: ListRules = PLAIN,
        dismissed: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Return the items whose recent purchases and carts grow fastest against their own past."""
        score, recent, baseline = self.trend.scores(window)
        allowed = self.catalog.allowed(Filters(category=category, in_stock_only=True))
        allowed = self.catalog.leaving_out(allowed, dismissed)
        masked = score.copy()
        if allowed is not None:
            masked[~allowed] = -np.inf
        rows, values, applied = shape.top(masked, n, self.catalog.cap_codes)
        items = [
            {**self.catalog.facts[row], "trend_score": round(float(value), 4),
             "recent": round(float(recent[row]), 2), "baseline": round(float(baseline[row]), 2)}
            for row, value in zip(rows.tolist(), values.tolist(), strict=True)
        ]  # fmt: skip
        extra = {"category": category, "window_days": window, "ends_on": day_text(self.trend.end_day)}
        return self.envelope(items, "trending", applied, **extra)

    def for_session(
        self,
        user_id: str | None,
        recent_items: list[str],
        n: int,
        filters: Filters,
        explain: bool = False,
        shape: ListRules = PLAIN,
        dismissed: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Fold a session's recent items (and the user's history, if known) into recommendations."""
        recent, unknown = self.catalog.index(recent_items)
        row = None if user_id is None else self.users.get(user_id)
        history = sp.csr_matrix((1, len(self.catalog)), dtype=np.float32)
        if row is not None:
            history = self.history_row(row).astype(np.float32)
        if len(recent):
            session = sp.csr_matrix(
                (np.full(len(recent), self.session_weight, np.float32), (np.zeros(len(recent), int), recent)),
                shape=(1, len(self.catalog)),
            )
            history = sp.csr_matrix(history + session)
        allowed = self.catalog.leaving_out(self.catalog.allowed(filters), dismissed)
        if not history.nnz:
            return {**self._cold(n, allowed, shape), "unknown_items": unknown}
        user_idx = np.array([row]) if row is not None and not len(recent) else None
        rows, scores, applied = self._rank(history, user_idx, n, allowed, shape)
        source = "personalized" if row is not None and not len(recent) else "session"
        items = self.ranked_items(rows, scores, history, explain)
        return self.envelope(items, source, applied, unknown_items=unknown)

    def similar(
        self, item_id: str, n: int, kind: SimilarKind, shape: ListRules = PLAIN, dismissed: Iterable[str] = ()
    ) -> dict[str, Any]:
        """Return items bought with, viewed with, or similar to one item, with the statistics behind each."""
        row = self.catalog.lookup.get(item_id)
        if row is None:
            raise UnknownItem(f"item {item_id!r} is not in the model", field="item_id", value=item_id)
        applied: list[str] = []
        left_out, _ = self.catalog.index(sorted(dismissed))
        if kind == "similar":
            sims = np.asarray(self.model.item_similarity(row), dtype=np.float64).copy()
            sims[row] = -np.inf
            sims[left_out] = -np.inf
            idx, values, applied = shape.top(sims, n, self.catalog.cap_codes)
            items = [
                {**self.catalog.describe(int(i)), "similarity": round(float(s), 6)}
                for i, s in zip(idx.tolist(), values.tolist(), strict=True)
            ]
        else:
            assoc = self.copurchase if kind == "also_bought" else self.coview
            if assoc is None:
                raise InvalidRequest(
                    "this model has no browse sessions, so no also_viewed statistics",
                    field="kind",
                    value=kind,
                )
            items, applied = _associated(assoc, row, n, self.catalog, shape, left_out)
        return {
            "item": self.catalog.describe(row),
            "kind": kind,
            "items": items,
            "model_version": self.version,
            "rules_applied": applied,
        }


def day_text(day: int) -> str | None:
    """Return a day (since 1970-01-01) as an ISO date, or None before any count."""
    return None if day < 0 else (np.datetime64(0, "D") + day).astype(str)


def _associated(
    assoc: Associations, row: int, n: int, catalog: Catalog, shape: ListRules, left_out: np.ndarray
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return the partners of ``row`` by co-count (ties by lift), with count, confidence and lift."""
    pairs = assoc.pair_counts[row]
    keep = ~np.isin(pairs.indices, left_out)
    if not keep.any():
        return [], []
    counts = pairs.data[keep].astype(np.float64)
    partners = pairs.indices[keep]
    anchor = np.full(len(partners), assoc.item_counts[row])
    _, confidence, lift = pair_statistics(counts, anchor, assoc.item_counts[partners], assoc.n_baskets)
    ranked = np.lexsort((-lift, -counts))
    at, applied = shape.reorder(partners[ranked], counts[ranked], n, catalog.cap_codes)
    order = ranked[at]
    return [
        {
            **catalog.describe(int(partners[i])),
            "co_count": int(counts[i]),
            "confidence": round(float(confidence[i]), 6),
            "lift": round(float(lift[i]), 4),
        }
        for i in order
    ], applied
