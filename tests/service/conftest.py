"""A small trained artifact and a client of the service that serves it; a real headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings


@pytest.fixture(scope="session")
def client(artifact_dir: Path) -> Iterator[TestClient]:
    """Return a client of the service with the in-process cache and no keys."""
    with TestClient(create_app(Settings(model_uri=str(artifact_dir))), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def browser() -> Iterator[Any]:
    """Yield Debian's Chromium, headless, driven by Playwright; missing, fail in CI and skip elsewhere."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("ORDERLIFT_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=path, args=flags)
        try:
            yield launched
        finally:
            launched.close()
