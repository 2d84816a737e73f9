"""IdIndex: external ids <-> matrix rows, stable (sorted), stored as numpy string arrays."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import ArtifactError

__all__ = ["IdIndex"]


class IdIndex:
    """A sorted, unique array of external ids; position is the matrix row or column."""

    def __init__(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind != "U":
            raise ValueError(f"ids must be a 1-d numpy unicode array, got {ids.dtype} {ids.shape}")
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise ValueError("ids must be sorted and unique; build with IdIndex.from_values")
        self.ids = ids

    @classmethod
    def from_values(cls, values: Iterable[object] | np.ndarray | pd.Series) -> IdIndex:
        """Build from any ids, dropping duplicates and missing values."""
        series = pd.Series(np.asarray(values, dtype=object)).dropna().astype(str)
        return cls(np.unique(series.to_numpy(dtype=str)))

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdIndex) and np.array_equal(self.ids, other.ids)

    def __hash__(self) -> int:
        return hash(self.ids.tobytes())

    def __repr__(self) -> str:
        return f"IdIndex({len(self)} ids)"

    @cached_property
    def _pandas(self) -> pd.Index:
        return pd.Index(self.ids.astype(object))

    @cached_property
    def _lookup(self) -> dict[str, int]:
        return {str(v): i for i, v in enumerate(self.ids)}

    def get(self, external_id: str) -> int | None:
        """Return the row of one id, or None when unknown."""
        return self._lookup.get(external_id)

    def to_index(self, external_ids: Iterable[object] | np.ndarray | pd.Series) -> np.ndarray:
        """Return rows (int64) for many ids; -1 where unknown."""
        values = np.asarray(external_ids, dtype=object)
        return self._pandas.get_indexer(pd.Index(values.astype(str))).astype(np.int64)

    def to_ids(self, rows: np.ndarray) -> np.ndarray:
        """Return the ids at ``rows``."""
        return self.ids[np.asarray(rows, dtype=np.int64)]

    def save(self, path: Path) -> None:
        """Write the ids as a ``.npy`` unicode array (never pickle)."""
        with Path(path).open("wb") as handle:  # exactly this path: np.save would add ".npy"
            np.save(handle, self.ids, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> IdIndex:
        """Read ids written by ``save``."""
        try:
            ids = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ArtifactError(f"{path}: not a readable id array ({exc})") from exc
        try:
            return cls(ids)
        except ValueError as exc:
            raise ArtifactError(f"{path}: {exc}") from exc
