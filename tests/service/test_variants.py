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
def registry(artifact_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.configure(uri)
    client = MlflowClient()
    client.create_registered_model("shop")
    for alias in ("production", "candidate"):
        version = client.create_model_version("shop", source=str(artifact_dir))
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


def test_variants_need_a_registry_uri(artifact_dir: Path) -> None:
    settings = Settings(model_uri=str(artifact_dir), variants="production:90,candidate:10")
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


def test_h6_a_registry_version_is_loaded_without_leaving_a_copy_on_disk(
    registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    import tempfile

    import mlflow.artifacts

    from service.loading import load

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    source = str(MlflowClient().get_model_version("shop", "1").source)

    def remote(artifact_uri: str, dst_path: str | None = None, **_: object) -> str:
        """Download as a remote artifact store does: a copy, into a new temp dir unless told where."""
        out = Path(dst_path or tempfile.mkdtemp()) / "artifact"
        shutil.copytree(source, out)
        return str(out)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", remote)
    for _ in range(3):
        assert load("models:/shop@production", registry).version == "shop/1"
    assert list(scratch.iterdir()) == []  # was one downloaded artifact per load


def test_h6_a_broken_version_is_not_downloaded_again_until_the_alias_moves(
    registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.artifacts

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    client = MlflowClient()
    bad = client.create_model_version("shop", source=str(broken))
    settings = Settings(
        model_uri="models:/shop@production", mlflow_tracking_uri=registry, reload_interval_s=0
    )
    downloads: list[str] = []
    real = mlflow.artifacts.download_artifacts

    def counted(*args: object, **kwargs: object) -> str:
        downloads.append(str(kwargs.get("artifact_uri")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", counted)
    with TestClient(create_app(settings)) as http:
        client.set_registered_model_alias("shop", "production", bad.version)
        state = http.app.state.orderlift  # type: ignore[attr-defined]
        first = http.portal.call(state.reload)  # type: ignore[union-attr]
        again = http.portal.call(state.reload)  # type: ignore[union-attr]
        assert first["production"]["status"] == again["production"]["status"] == "failed"
        assert "not retried" in again["production"]["reason"]
        assert downloads.count(f"models:/shop/{bad.version}") == 1
        assert http.get("/v1/users/u1/recommendations").status_code == 200  # the old version serves
        client.set_registered_model_alias("shop", "production", "1")
        assert http.portal.call(state.reload)["production"]["status"] in ("loaded", "unchanged")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "tracking", ["http://alice:s3cret@127.0.0.1:1", "mysql://alice:s3cret@127.0.0.1:1/db"]
)
def test_m10_a_registry_that_fails_is_reported_without_its_credentials(
    tracking: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    settings = Settings(
        model_uri="models:/shop@production", mlflow_tracking_uri=tracking, reload_interval_s=0
    )
    with TestClient(create_app(settings)) as client:  # the mysql one crashed the startup before
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["model_error"]
        assert "s3cret" not in ready.text and "alice" not in ready.text
