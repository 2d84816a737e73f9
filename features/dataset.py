"""Load a shop's history end to end: read, validate, filter, index and weight."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.association import Associations
from features.columns import encode, parse_float
from features.io import SourceFormat, read_items
from features.kcore import kcore
from features.matrix import Interactions, Weighting, build_interactions, rows_of
from features.validate import ValidationResult, load_events

__all__ = ["Dataset", "indexed_anonymous", "load_catalog", "load_dataset"]

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "t", "yes", "y", "in_stock"}


@dataclass(frozen=True)
class Dataset:
    """Validated events (after k-core filtering) and the weighted interactions built from them."""

    validation: ValidationResult
    events: pd.DataFrame
    interactions: Interactions
    catalog: pd.DataFrame | None = None
    #: Purchase lines of orders without a user id, of items in ``interactions.items`` only.
    anonymous: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: Co-purchase counts over every order, when an engine computed them while loading.
    copurchase: Associations | None = None


def load_catalog(path: Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read an items catalog into item_id, name, category, price and cost (floats), in_stock (bool)."""
    table = read_items(Path(path), mapping)
    n = table.num_rows
    item = encode(table.column("item_id"), n)
    frame = pd.DataFrame({"item_id": item.values[item.codes[item.present]]})
    keep = item.present
    for name in ("name", "category"):
        if name in table.column_names:
            col = encode(table.column(name), n)
            frame[name] = np.append(col.values.astype(object), [None])[col.codes][keep]
    for name in ("price", "cost"):
        if name in table.column_names:
            frame[name] = parse_float(table.column(name), n)[0][keep]
    if "in_stock" in table.column_names:
        col = encode(table.column("in_stock"), n)
        flags = np.array([str(v).strip().lower() in _TRUE for v in col.values] + [True])
        frame["in_stock"] = flags[col.codes][keep]
    return frame.drop_duplicates("item_id", keep="last").reset_index(drop=True)


def load_dataset(
    events_path: Path,
    fmt: SourceFormat,
    items_path: Path | None = None,
    weighting: Weighting | None = None,
    min_user: int = 1,
    min_item: int = 1,
    quarantine: Path | None = None,
) -> Dataset:
    """Load events (and an optional catalog) into a Dataset."""
    validation = load_events(Path(events_path), fmt, quarantine=quarantine)
    events = kcore(validation.events, min_user, min_item)
    catalog = load_catalog(items_path, fmt.item_columns) if items_path is not None else None
    interactions = build_interactions(events, weighting, catalog)
    anonymous = indexed_anonymous(validation.anonymous, interactions)
    logger.info(
        "dataset: %d users x %d items, %d interactions",
        len(interactions.users),
        len(interactions.items),
        interactions.matrix.nnz,
    )
    return Dataset(validation, events, interactions, catalog, anonymous)


def indexed_anonymous(anonymous: pd.DataFrame, interactions: Interactions) -> pd.DataFrame:
    """Return the anonymous purchase lines of items in the index (the others cannot be scored)."""
    if len(anonymous):
        indexed = rows_of(anonymous["item_id"], interactions.items) >= 0
        anonymous = anonymous[indexed].reset_index(drop=True)
        logger.info(
            "anonymous purchase lines: %d kept, %d dropped (items outside the index)",
            len(anonymous),
            int((~indexed).sum()),
        )
    return anonymous
