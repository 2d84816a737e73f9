"""A small trained bundle and a client of the service that serves it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.bundle import Bundle, load_bundle
from features.dataset import Dataset
from service.app import create_app
from service.config import Settings
from training.job import TrainConfig, run_training


@pytest.fixture(scope="session")
def bundle_dir(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a bundle of an ALS model trained on the synthetic store."""
    out = tmp_path_factory.mktemp("served") / "bundle"
    config = TrainConfig(model="als", params={"factors": 16, "iterations": 8}, holdout=0.2)
    run_training(dataset, config, out, {"fingerprint": "test"})
    return out


@pytest.fixture(scope="session")
def bundle(bundle_dir: Path) -> Bundle:
    """Return the served bundle, loaded."""
    return load_bundle(bundle_dir)


@pytest.fixture(scope="session")
def client(bundle_dir: Path) -> Iterator[TestClient]:
    """Return a client of the service with the in-process cache and no keys."""
    with TestClient(create_app(Settings(model_uri=str(bundle_dir))), raise_server_exceptions=False) as c:
        yield c
