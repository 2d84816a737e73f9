"""Dismissals in training: the next model ranks dismissed items lower, and the artifact never serves them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.artifact import load_artifact
from features.dataset import Dataset, load_dataset
from features.io import resolve_format
from features.matrix import Weighting
from features.synthetic import SyntheticStore, generate_store, write_store
from service.app import create_app
from service.config import Settings
from training.cli import app as cli
from training.job import TrainConfig, run_training
from training.models import create_model


@pytest.fixture(scope="module")
def disliked(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticStore, Path]:
    store = generate_store(users=800, items=120, days=45, seed=9, dislike_share=0.3)
    root = tmp_path_factory.mktemp("dislikes")
    write_store(store, root)
    return store, root


def _load(root: Path, way: str) -> Dataset:
    return load_dataset(root / "events.csv", resolve_format(), root / "items.csv", Weighting(dismissals=way))  # type: ignore[arg-type]


def _mean_rank(store: SyntheticStore, dataset: Dataset) -> float:
    inter = dataset.interactions
    model = create_model("als", factors=16, iterations=8, report_loss=False)
    model.fit(inter.matrix)
    rows = inter.users.to_index(store.truth.dislikes[:, 0])
    cols = inter.items.to_index(store.truth.dislikes[:, 1])
    scores = model.score(inter.matrix[rows], rows)
    mine = scores[np.arange(len(rows)), cols]
    return float(((scores > mine[:, None]).sum(axis=1) + 1).mean())


def test_excluding_dismissed_pairs_makes_the_next_model_rank_them_lower(
    disliked: tuple[SyntheticStore, Path],
) -> None:
    store, root = disliked
    assert _mean_rank(store, _load(root, "exclude")) > 2 * _mean_rank(store, _load(root, "keep"))


@pytest.fixture(scope="module")
def model(disliked: tuple[SyntheticStore, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, root = disliked
    out = tmp_path_factory.mktemp("disliked-model") / "model"
    config = TrainConfig(model="als", params={"factors": 16, "iterations": 8}, holdout=None)
    run_training(_load(root, "exclude"), config, out, {"fingerprint": "d"})
    return out


def test_the_artifact_keeps_the_dismissals_and_the_service_never_shows_them(
    disliked: tuple[SyntheticStore, Path], model: Path, tmp_path: Path
) -> None:
    store, _ = disliked
    artifact = load_artifact(model)
    assert artifact.dismissed is not None and artifact.dismissed.nnz == len(store.truth.dislikes)
    settings = Settings(model_uri=str(model), event_log=tmp_path / "e.jsonl")
    with TestClient(create_app(settings)) as client:
        for user, item in store.truth.dislikes[:40].tolist():
            shown = client.get(f"/v1/users/{user}/recommendations", params={"n": 50}).json()["items"]
            assert item not in {i["item_id"] for i in shown}


def test_a_campaign_export_never_offers_a_shopper_what_they_dismissed(
    disliked: tuple[SyntheticStore, Path], model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = disliked
    monkeypatch.delenv("ORDERLIFT_REDIS_URL", raising=False)
    out = tmp_path / "campaign.csv"
    args = ["export-recommendations", "--model-uri", str(model), "--out", str(out), "--n", "50"]
    result = CliRunner().invoke(cli, args, env={"ORDERLIFT_EVENT_LOG": str(tmp_path / "e.jsonl")})
    assert result.exit_code == 0, result.output
    exported = pd.read_csv(out, dtype=str)
    pairs = set(zip(exported["user_id"], exported["item_id"], strict=True))
    assert len(exported) > 0 and not pairs & {(str(u), str(i)) for u, i in store.truth.dislikes.tolist()}
