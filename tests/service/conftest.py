"""A small trained artifact and a client of the service that serves it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings


@pytest.fixture(scope="session")
def client(artifact_dir: Path) -> Iterator[TestClient]:
    """Return a client of the service with the in-process cache and no keys."""
    with TestClient(create_app(Settings(model_uri=str(artifact_dir))), raise_server_exceptions=False) as c:
        yield c
