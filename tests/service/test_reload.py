"""Hot reload: a new artifact swaps in, a broken one is refused, no request fails during a swap."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from features.artifact import ModelArtifact
from features.dataset import Dataset
from service.app import create_app
from service.config import Settings
from service.variants import bucket as _bucket
from tests.harness import Server
from training.job import TrainConfig, run_training

ADMIN = {"X-API-Key": "admin-key"}


@pytest.fixture(scope="module")
def second_artifact(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("second") / "artifact"
    run_training(dataset, TrainConfig(model="cosine", holdout=None), out, {"fingerprint": "second"})
    return out


@pytest.fixture
def served(artifact_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    live = Path(shutil.copytree(artifact_dir, tmp_path / "live"))
    settings = Settings(model_uri=str(live), admin_keys=("admin-key",), reload_interval_s=0)
    with TestClient(create_app(settings)) as client:
        yield client, live


def _swap(target: Path, source: Path) -> None:
    shutil.rmtree(target)
    shutil.copytree(source, target)


def test_admin_reload_swaps_in_a_new_artifact(served: tuple[TestClient, Path], second_artifact: Path) -> None:
    client, live = served
    before = client.get("/v1/model", headers=ADMIN).json()
    _swap(live, second_artifact)
    outcome = client.post("/v1/admin/reload", headers=ADMIN).json()
    assert outcome["variants"]["default"]["status"] == "loaded"
    after = client.get("/v1/model", headers=ADMIN).json()
    assert (before["model"]["kind"], after["model"]["kind"]) == ("als", "cosine")
    assert after["version"] != before["version"]
    assert client.get("/readyz", headers=ADMIN).json()["counters"]["reloads"] == 2


def test_a_broken_artifact_never_replaces_a_working_one(served: tuple[TestClient, Path]) -> None:
    client, live = served
    version = client.get("/readyz", headers=ADMIN).json()["model_version"]
    (live / "history.npz").write_bytes(b"corrupt")
    outcome = client.post("/v1/admin/reload", headers=ADMIN).json()
    assert outcome["variants"]["default"]["status"] == "failed"
    assert "checksum mismatch" in outcome["variants"]["default"]["reason"]
    assert outcome["serving"] == {"default": version}
    ready = client.get("/readyz", headers=ADMIN).json()
    assert ready["ready"] is True and ready["model_version"] == version
    assert "checksum mismatch" in ready["model_error"]
    assert ready["counters"]["reloads_failed"] == 1
    assert client.get("/v1/users/anyone/recommendations", headers=ADMIN).status_code == 200


def test_reload_needs_an_admin_key(served: tuple[TestClient, Path]) -> None:
    client, _ = served
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers={"X-API-Key": "nope"}).status_code == 401


def test_no_request_fails_while_models_are_swapped_under_load(
    artifact_dir: Path, second_artifact: Path, tmp_path: Path
) -> None:
    link = tmp_path / "current"
    link.symlink_to(artifact_dir)
    env = {
        "ORDERLIFT_MODEL_URI": str(link),
        "ORDERLIFT_ADMIN_KEYS": "admin-key",
        "ORDERLIFT_RATE_LIMIT_ADMIN": "100000/second",  # the hammer below is one key at full speed
        "ORDERLIFT_RELOAD_INTERVAL_S": "0",
    }
    server = Server(env).start()
    failures: list[str] = []
    done = threading.Event()
    counts = [0] * 6

    def hammer(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10.0, headers=ADMIN) as client:
            n = 0
            while not done.is_set():
                n += 1
                r = client.get(f"/v1/users/load-{worker}-{n}/recommendations", params={"n": 5})
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                counts[worker] += 1

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(6)]
    try:
        for t in threads:
            t.start()
        versions = set()
        with httpx.Client(base_url=server.url, timeout=60.0, headers=ADMIN) as admin:
            for target in (second_artifact, artifact_dir, second_artifact):
                fresh = tmp_path / "next"
                fresh.symlink_to(target)
                os.replace(fresh, link)  # atomic switch of the directory MODEL_URI names
                outcome = admin.post("/v1/admin/reload").json()
                assert outcome["variants"]["default"]["status"] == "loaded", outcome
                versions.add(outcome["variants"]["default"]["version"])
    finally:
        done.set()
        for t in threads:
            t.join(timeout=30)
        server.kill()
    assert len(versions) == 2
    assert sum(counts) >= 30  # requests kept flowing through every swap
    assert failures == []


def test_variant_assignment_is_stable_and_close_to_the_split() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    spots = [_bucket(u) for u in users]
    assert spots == [_bucket(u) for u in users]
    share = sum(s < 90.0 for s in spots) / len(spots)
    assert 0.89 < share < 0.91


def test_m6_a_artifact_that_loads_but_cannot_be_served_leaves_the_service_up_and_says_why(
    artifact_dir: Path, tmp_path: Path
) -> None:
    import pandas as pd

    broken = tmp_path / "artifact"
    shutil.copytree(artifact_dir, broken)
    items = pd.read_parquet(broken / "items.parquet").rename(columns={"name": "title"})
    items.to_parquet(broken / "items.parquet")  # right shape, a column the service reads is gone
    settings = Settings(model_uri=str(broken), verify_artifact=False, reload_interval_s=0)
    with TestClient(create_app(settings)) as client:  # was: the startup crashed on KeyError
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "items.parquet: columns ['name'] are missing" in ready.json()["model_error"]
        assert client.get("/v1/users/u1/recommendations").status_code == 503


def test_m11_a_cart_model_with_out_of_range_indices_is_refused_at_load(
    artifact_dir: Path, tmp_path: Path
) -> None:
    import json

    import numpy as np

    from service.loading import LoadError, load

    crafted = tmp_path / "artifact"
    shutil.copytree(artifact_dir, crafted)
    weights = crafted / "cart" / "weights.npz"
    with np.load(weights) as saved:
        arrays = dict(saved)
    arrays["indices"] = arrays["indices"].copy()
    arrays["indices"][0] = 10**7  # far outside the catalog: compiled code would read wild memory
    np.savez(weights, **arrays)
    with pytest.raises(LoadError, match=r"cart model.*indices"):
        load(str(crafted), "", verify=False)
    manifest = json.loads((crafted / "manifest.json").read_text())
    manifest["files"]["../../etc/hostname"] = "0" * 64
    (crafted / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LoadError, match="outside the artifact"):
        load(str(crafted), "", verify=True)


def test_m11_the_service_with_a_signing_key_refuses_an_unsigned_artifact(artifact_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.config import Settings

    settings = Settings(model_uri=str(artifact_dir), artifact_signing_key="k" * 32)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        answer = client.get("/v1/users/u1/recommendations")
    assert ready.status_code == 503
    assert answer.status_code == 503 and "is not signed" in answer.json()["error"]["message"]


def test_m5_after_a_swap_the_old_models_cached_answers_bridge_while_the_new_ones_fill(
    served: tuple[TestClient, Path], second_artifact: Path, artifact: ModelArtifact
) -> None:
    import time

    client, live = served
    url = f"/v1/users/{artifact.users.ids[0]}/recommendations"
    old = client.get(url, headers=ADMIN)
    assert client.get(url, headers=ADMIN).headers["x-cache"] == "hit"
    _swap(live, second_artifact)
    assert client.post("/v1/admin/reload", headers=ADMIN).json()["variants"]["default"]["status"] == "loaded"
    bridged = client.get(url, headers=ADMIN)
    assert bridged.headers["x-cache"] == "previous"
    assert bridged.json()["model_version"] == old.json()["model_version"]
    deadline = time.monotonic() + 5.0
    fresh = client.get(url, headers=ADMIN)
    while fresh.headers["x-cache"] != "hit" and time.monotonic() < deadline:
        time.sleep(0.05)
        fresh = client.get(url, headers=ADMIN)
    assert fresh.headers["x-cache"] == "hit"
    assert fresh.json()["model_version"] != old.json()["model_version"]


def test_m5_without_a_grace_a_swap_answers_misses_from_the_new_model(
    artifact_dir: Path, second_artifact: Path, artifact: ModelArtifact, tmp_path: Path
) -> None:
    live = Path(shutil.copytree(artifact_dir, tmp_path / "live"))
    settings = Settings(model_uri=str(live), admin_keys=("admin-key",), reload_interval_s=0, swap_grace_s=0)
    url = f"/v1/users/{artifact.users.ids[0]}/recommendations"
    with TestClient(create_app(settings)) as client:
        client.get(url, headers=ADMIN)
        _swap(live, second_artifact)
        client.post("/v1/admin/reload", headers=ADMIN)
        assert client.get(url, headers=ADMIN).headers["x-cache"] == "miss"
