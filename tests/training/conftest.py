"""A small synthetic store, loaded once per session, for model and training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.dataset import Dataset, load_dataset
from features.io import resolve_format
from features.synthetic import SyntheticStore, generate_store, write_store


@pytest.fixture(scope="session")
def store() -> SyntheticStore:
    """Return a deterministic store: 1,500 users, 200 items, 60 days."""
    return generate_store(users=1500, items=200, days=60, seed=11)


@pytest.fixture(scope="session")
def store_dir(store: SyntheticStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a directory holding the store's events.csv, items.csv and truth.json."""
    out = tmp_path_factory.mktemp("store")
    write_store(store, out)
    return out


@pytest.fixture(scope="session")
def dataset(store_dir: Path) -> Dataset:
    """Return the store loaded through the event pipeline, with its catalog."""
    return load_dataset(store_dir / "events.csv", resolve_format(), store_dir / "items.csv")
