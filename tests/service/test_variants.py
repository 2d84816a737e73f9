"""A/B variants over registry aliases: side by side, stable per user, attributed per variant."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from service.app import create_app
from service.config import Settings
from training import tracking


@pytest.fixture
def registry(bundle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.configure(uri)
    client = MlflowClient()
    client.create_registered_model("shop")
    for alias in ("production", "candidate"):
        version = client.create_model_version("shop", source=str(bundle_dir))
        client.set_registered_model_alias("shop", alias, version.version)
    return uri


def test_variants_are_served_side_by_side_and_stable_per_user(registry: str) -> None:
    settings = Settings(
        model_uri="models:/shop@production",
        variants="production:70,candidate:30",
        mlflow_tracking_uri=registry,
        reload_interval_s=0,
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert {n: v["version"] for n, v in ready["variants"].items()} == {
            "production": "shop/1",
            "candidate": "shop/2",
        }
        seen = {}
        for i in range(300):
            body = client.get(f"/v1/users/visitor-{i}/recommendations", params={"n": 3}).json()
            seen[i] = (body["variant"], body["model_version"])
            assert body["recommendation_id"].startswith(body["variant"] + ".")
        shares = Counter(variant for variant, _ in seen.values())
        assert 0.6 < shares["production"] / 300 < 0.8
        assert {v: m for v, m in seen.values()} == {"production": "shop/1", "candidate": "shop/2"}
        again = client.get("/v1/users/visitor-7/recommendations", params={"n": 3}).json()
        assert (again["variant"], again["model_version"]) == seen[7]


def test_variants_need_a_registry_uri(bundle_dir: Path) -> None:
    settings = Settings(model_uri=str(bundle_dir), variants="production:90,candidate:10")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert (
            "ORDERLIFT_VARIANTS needs ORDERLIFT_MODEL_URI=models:/NAME@ALIAS" in ready.json()["model_error"]
        )


def test_an_unreachable_alias_leaves_the_other_variants_serving(registry: str) -> None:
    settings = Settings(
        model_uri="models:/shop@production",
        variants="production:50,missing:50",
        mlflow_tracking_uri=registry,
        reload_interval_s=0,
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["variants"]["missing"]["version"] is None and "missing" in ready["model_error"]
        statuses = {client.get(f"/v1/users/v{i}/recommendations").status_code for i in range(50)}
        assert statuses == {200}
