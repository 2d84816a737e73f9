"""Weighted user x item matrices (vectorised) and item metadata aligned to the index.

Confidence of (user, item) = sum over its events of
``weight[event_type] * decay(age) * q(quantity)`` where ``decay(age) = 0.5 ** (age / half_life)``
(off by default: 1) and ``q(x) = log2(1 + x)`` for log scaling (``q(1) = 1``, ``q(3) = 2``), ``x``
for linear and ``1`` for none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.columns import timestamp_ns
from features.errors import InvalidParameter
from features.ids import IdIndex
from features.schema import DEFAULT_WEIGHTS, EventType

__all__ = [
    "Interactions",
    "MatrixBuilder",
    "Weighting",
    "build_interactions",
    "build_matrix",
    "dismissed_pairs",
    "event_confidence",
    "item_metadata",
    "observed",
    "rows_of",
]

QuantityScale = Literal["log", "linear", "none"]
Dismissals = Literal["exclude", "keep"]


@dataclass(frozen=True)
class Weighting:
    """How events turn into confidence."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    half_life_days: float | None = None
    quantity_scale: QuantityScale = "log"
    reference_time: pd.Timestamp | None = None
    #: ``exclude``: a (user, item) pair whose last dismissal is newer than its last cart or
    #: purchase adds nothing (the shopper said "not interested"); ``keep``: dismissals are ignored.
    dismissals: Dismissals = "exclude"

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise InvalidParameter(f"weights name unknown event types: {', '.join(sorted(unknown))}")
        if any(w < 0 for w in self.weights.values()):
            raise InvalidParameter(f"weights must be >= 0, got {dict(self.weights)}")
        if self.half_life_days is not None and self.half_life_days <= 0:
            raise InvalidParameter(f"half_life_days must be > 0, got {self.half_life_days}")
        if self.quantity_scale not in ("log", "linear", "none"):
            raise InvalidParameter(f"quantity_scale must be log, linear or none, got {self.quantity_scale!r}")
        if self.dismissals not in ("exclude", "keep"):
            raise InvalidParameter(f"dismissals must be exclude or keep, got {self.dismissals!r}")


@dataclass(frozen=True)
class Interactions:
    """The weighted user x item matrix with its id indexes and aligned item metadata."""

    matrix: sp.csr_matrix
    users: IdIndex
    items: IdIndex
    item_meta: pd.DataFrame

    @property
    def density(self) -> float:
        """Return the share of (user, item) cells with a value."""
        cells = len(self.users) * len(self.items)
        return self.matrix.nnz / cells if cells else 0.0


def event_confidence(events: pd.DataFrame, weighting: Weighting) -> np.ndarray:
    """Return each event's confidence contribution (float64)."""
    weights = {**{k: 0.0 for k in DEFAULT_WEIGHTS}, **weighting.weights}
    types = events["event_type"].cat
    per_type = np.array([weights.get(str(c), 0.0) for c in types.categories] + [0.0])  # dismiss: 0
    conf = per_type[types.codes.to_numpy()]
    if weighting.half_life_days is not None:
        ts = events["timestamp"]
        ref = weighting.reference_time if weighting.reference_time is not None else ts.max()
        ref = pd.Timestamp(ref)
        ref = ref.tz_localize("UTC") if ref.tzinfo is None else ref.tz_convert("UTC")
        age_days = (ref - ts).dt.total_seconds().to_numpy() / 86400.0
        conf = conf * np.power(0.5, np.clip(age_days, 0.0, None) / weighting.half_life_days)
    quantity = events["quantity"].to_numpy(dtype=np.float64)
    if weighting.quantity_scale == "log":
        conf = conf * np.log2(1.0 + quantity)
    elif weighting.quantity_scale == "linear":
        conf = conf * quantity
    return conf


def observed(column: pd.Series) -> np.ndarray:
    """Return the categories of a categorical column that occur in it."""
    codes = column.cat.codes.to_numpy()
    categories = column.cat.categories
    used = np.bincount(codes[codes >= 0], minlength=len(categories)) > 0
    return categories.to_numpy(dtype=object)[used]


def rows_of(column: pd.Series, index: IdIndex) -> np.ndarray:
    """Return the index rows of a categorical id column (-1 where not in the index)."""
    cat = column.cat
    lookup = np.append(index.to_index(cat.categories.to_numpy()), -1)
    return lookup[cat.codes.to_numpy()]


def dismissed_pairs(events: pd.DataFrame, users: IdIndex, items: IdIndex) -> sp.csr_matrix:
    """Return users x items, True where the last dismissal is newer than the last cart or purchase."""
    rows, cols = rows_of(events["user_id"], users), rows_of(events["item_id"], items)
    mask = _dismissed(events, rows, cols, len(items))
    hit = mask & (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix(
        (np.ones(int(hit.sum()), dtype=bool), (rows[hit], cols[hit])), shape=(len(users), len(items))
    )
    matrix.sum_duplicates()
    return matrix


def _dismissed(events: pd.DataFrame, rows: np.ndarray, cols: np.ndarray, n_items: int) -> np.ndarray:
    """Return, per event, whether its (user, item) pair stands dismissed (after its last cart or purchase)."""
    kind = events["event_type"]
    if EventType.DISMISS.value not in set(kind.cat.categories):
        return np.zeros(len(events), dtype=bool)
    pair = rows.astype(np.int64) * n_items + cols
    ts = timestamp_ns(events["timestamp"])
    is_dismiss = (kind == EventType.DISMISS.value).to_numpy()
    if not is_dismiss.any():
        return np.zeros(len(events), dtype=bool)
    said = pd.Series(ts[is_dismiss]).groupby(pair[is_dismiss]).max()
    owning = [EventType.CART.value, EventType.PURCHASE.value]
    wanted = kind.isin(owning).to_numpy() & np.isin(pair, said.index.to_numpy())
    bought = pd.Series(ts[wanted]).groupby(pair[wanted]).max()
    standing = said.index[(said > bought.reindex(said.index).fillna(np.iinfo(np.int64).min)).to_numpy()]
    return np.isin(pair, standing.to_numpy())


def build_matrix(
    events: pd.DataFrame, users: IdIndex, items: IdIndex, weighting: Weighting | None = None
) -> sp.csr_matrix:
    """Sum event confidences into a users x items float32 CSR; events outside the indexes drop.

    Dismissed pairs add nothing (``Weighting.dismissals``).
    """
    weighting = weighting or Weighting()
    conf = event_confidence(events, weighting)
    rows, cols = rows_of(events["user_id"], users), rows_of(events["item_id"], items)
    keep = (rows >= 0) & (cols >= 0) & (conf > 0)
    if weighting.dismissals == "exclude":
        keep &= ~_dismissed(events, rows, cols, len(items))
    matrix = sp.csr_matrix(
        (conf[keep], (rows[keep], cols[keep])), shape=(len(users), len(items)), dtype=np.float64
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def item_metadata(events: pd.DataFrame, items: IdIndex, catalog: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return name, category, price, cost and in_stock per item row: catalog first, else from events.

    Only a catalog knows costs (NaN without one).
    """
    cols = rows_of(events["item_id"], items)
    meta = pd.DataFrame(index=pd.RangeIndex(len(items)))
    meta["item_id"] = items.ids.astype(object)
    paid = pd.Series(events["price"].to_numpy(), index=cols)
    paid = paid[(paid.index >= 0) & paid.notna()]
    meta["price"] = paid.groupby(level=0).median().reindex(meta.index)
    for name, source in (("name", "item_name"), ("category", "category")):
        meta[name] = _most_frequent(events, source, cols, len(items))
    meta["cost"] = np.nan
    meta["in_stock"] = True
    if catalog is not None and len(catalog):
        at = items.to_index(catalog["item_id"].to_numpy())
        known = catalog[at >= 0].set_index(at[at >= 0])
        for name in ("name", "category", "price", "cost", "in_stock"):
            if name in known.columns:
                values = known[name].dropna()
                meta.loc[values.index, name] = values.to_numpy()
    meta["name"] = meta["name"].fillna(meta["item_id"]).astype(str)
    meta["category"] = meta["category"].fillna("").astype(str)
    for name in ("price", "cost"):
        meta[name] = pd.to_numeric(meta[name], errors="coerce").astype(np.float64)
    meta["in_stock"] = meta["in_stock"].astype(bool)
    return meta


def _most_frequent(events: pd.DataFrame, source: str, cols: np.ndarray, n: int) -> pd.Series:
    """Return the most frequent value of a categorical column per item row (NaN when none)."""
    if source not in events.columns:
        return pd.Series([None] * n, dtype=object)
    codes = events[source].cat.codes.to_numpy()
    keep = (codes >= 0) & (cols >= 0)
    pairs = pd.DataFrame({"row": cols[keep], "code": codes[keep]})
    counts = pairs.value_counts().reset_index(name="n").sort_values(["row", "n"], ascending=[True, False])
    top = counts.drop_duplicates("row").set_index("row")["code"]
    names = events[source].cat.categories.to_numpy(dtype=object)[top.to_numpy()]
    return pd.Series(names, index=top.index, dtype=object).reindex(range(n))


#: What builds the weighted matrix from events over the indexes: ``build_matrix``, or an engine's.
MatrixBuilder = Callable[[pd.DataFrame, IdIndex, IdIndex, Weighting | None], sp.csr_matrix]


def build_interactions(
    events: pd.DataFrame,
    weighting: Weighting | None = None,
    catalog: pd.DataFrame | None = None,
    matrix_of: MatrixBuilder = build_matrix,
) -> Interactions:
    """Index the events' users and items and build the weighted matrix and item metadata."""
    users = IdIndex.from_values(observed(events["user_id"]))
    items = IdIndex.from_values(observed(events["item_id"]))
    matrix = matrix_of(events, users, items, weighting)
    return Interactions(matrix, users, items, item_metadata(events, items, catalog))
