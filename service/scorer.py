"""The scoring object: per-user recommendations, session fold-in, similar items.

It holds one loaded model and precomputes what every request needs (item arrays aligned to the
index, the popularity order); requests then cost a few numpy operations over the item axis.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.association import Associations, pair_statistics
from service.cache_keys import digest
from service.config import Settings
from service.errors import InvalidRequest, UnknownItem
from service.live import LiveHistory
from service.loading import LoadedModel
from training.models import best_of

__all__ = ["Catalog", "Filters", "Scorer"]


SimilarKind = Literal["also_bought", "also_viewed", "similar"]


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
        self.in_stock = meta["in_stock"].fillna(True).to_numpy(dtype=bool)
        self.lookup = {str(item): i for i, item in enumerate(ids)}
        codes, self.category_names = pd.factorize(pd.Series(self.categories))
        self.category_codes = np.asarray(codes, dtype=np.int64)
        self.category_lookup = {str(name): i for i, name in enumerate(self.category_names)}
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

    def new_recommendation_id(self) -> str:
        """Return a fresh id that carries the variant, so events can be attributed without a lookup."""
        return f"{self.variant}.{secrets.token_hex(16)}"

    def _live_row(self, live: LiveHistory) -> sp.csr_matrix:
        """Return the live weights as a one-row history over the model's items."""
        weighted = live.weights(self.live_weights)
        rows, _ = self.catalog.index(list(weighted))
        weights = [weighted[str(self.catalog.ids[r])] for r in rows]
        return sp.csr_matrix(
            (np.asarray(weights, np.float32), (np.zeros(len(rows), int), rows)), shape=(1, len(self.catalog))
        )

    def envelope(self, items: list[dict[str, Any]], source: str, **extra: Any) -> dict[str, Any]:
        """Wrap answer items as every recommendation answer is sent (precompute writes the same)."""
        return {
            "items": items,
            "source": source,
            "model_version": self.version,
            "variant": self.variant,
            "recommendation_id": self.new_recommendation_id(),
            **extra,
        }

    def _popular(self, n: int, allowed: np.ndarray | None, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = self.popular_order
        keep = np.ones(len(order), dtype=bool) if allowed is None else allowed[order]
        keep &= ~np.isin(order, seen)
        rows = order[keep][:n]
        return rows, self.loaded.artifact.popularity[rows].astype(np.float32)

    def _rank(
        self, history: sp.csr_matrix, user_idx: np.ndarray | None, n: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(self.model.score(history, user_idx)[0], dtype=np.float32)  # a fresh row
        scores[history.indices] = -np.inf
        if allowed is not None:
            scores[~allowed] = -np.inf
        order = best_of(scores, n)
        vals = scores[order]
        keep = np.isfinite(vals)
        return order[keep], vals[keep]

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
        self, user_id: str, n: int, filters: Filters, explain: bool = False, live: LiveHistory | None = None
    ) -> dict[str, Any]:
        """Recommend for a known user, or from an unknown user's live history; else the popular list.

        Items the user carted or bought since training (``live.owned``) are left out at once.
        """
        allowed = self.catalog.allowed(filters)
        live = live or LiveHistory()
        if live.owned:
            owned, _ = self.catalog.index(sorted(live.owned))
            allowed = np.ones(len(self.catalog), dtype=bool) if allowed is None else allowed.copy()
            allowed[owned] = False
        row = self.users.get(user_id)
        if row is not None:
            history = self.history_row(row)
            rows, scores = self._rank(history, np.array([row]), n, allowed)
            return self.envelope(self.ranked_items(rows, scores, history, explain), "personalized")
        if live:
            history = self._live_row(live)
            if history.nnz:
                rows, scores = self._rank(history, None, n, allowed)
                return self.envelope(self.ranked_items(rows, scores, history, explain), "live")
        rows, scores = self._popular(n, allowed, np.zeros(0, dtype=np.int64))
        return self.envelope(self.ranked_items(rows, scores, None, False), "popular")

    def for_session(
        self, user_id: str | None, recent_items: list[str], n: int, filters: Filters, explain: bool = False
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
        allowed = self.catalog.allowed(filters)
        if not history.nnz:
            rows, scores = self._popular(n, allowed, np.zeros(0, dtype=np.int64))
            return self.envelope(
                self.ranked_items(rows, scores, None, False), "popular", unknown_items=unknown
            )
        user_idx = np.array([row]) if row is not None and not len(recent) else None
        rows, scores = self._rank(history, user_idx, n, allowed)
        source = "personalized" if row is not None and not len(recent) else "session"
        return self.envelope(self.ranked_items(rows, scores, history, explain), source, unknown_items=unknown)

    def similar(self, item_id: str, n: int, kind: SimilarKind) -> dict[str, Any]:
        """Return items bought with, viewed with, or similar to one item, with the statistics behind each."""
        row = self.catalog.lookup.get(item_id)
        if row is None:
            raise UnknownItem(f"item {item_id!r} is not in the model", field="item_id", value=item_id)
        if kind == "similar":
            idx, sims = self.model.similar_items(row, n)
            keep = np.isfinite(sims)
            items = [
                {**self.catalog.describe(int(i)), "similarity": round(float(s), 6)}
                for i, s in zip(idx[keep], sims[keep], strict=True)
            ]
        else:
            assoc = self.copurchase if kind == "also_bought" else self.coview
            if assoc is None:
                raise InvalidRequest(
                    "this model has no browse sessions, so no also_viewed statistics",
                    field="kind",
                    value=kind,
                )
            items = _associated(assoc, row, n, self.catalog)
        return {
            "item": self.catalog.describe(row),
            "kind": kind,
            "items": items,
            "model_version": self.version,
        }


def _associated(assoc: Associations, row: int, n: int, catalog: Catalog) -> list[dict[str, Any]]:
    """Return the partners of ``row`` by co-count (ties by lift), with count, confidence and lift."""
    pairs = assoc.pair_counts[row]
    if not pairs.nnz:
        return []
    counts = pairs.data.astype(np.float64)
    partners = pairs.indices
    anchor = np.full(len(partners), assoc.item_counts[row])
    _, confidence, lift = pair_statistics(counts, anchor, assoc.item_counts[partners], assoc.n_baskets)
    order = np.lexsort((-lift, -counts))[:n]
    return [
        {
            **catalog.describe(int(partners[i])),
            "co_count": int(counts[i]),
            "confidence": round(float(confidence[i]), 6),
            "lift": round(float(lift[i]), 4),
        }
        for i in order
    ]
