"""The training job and its artifact: evaluation beside the baseline, the refit, a faithful round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from features.artifact import SCHEMA_VERSION, load_artifact
from features.dataset import Dataset
from features.errors import ArtifactError
from training.job import TrainConfig, TrainResult, run_training
from training.models import create_model, load_model

DATA = {"events_path": "events.csv", "fingerprint": "abc123"}


@pytest.fixture(scope="module")
def trained(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("bundles") / "cosine"
    return run_training(dataset, TrainConfig(model="cosine", holdout=0.2), out, DATA)


def test_training_scores_the_model_and_the_baseline_on_the_same_holdout(trained: TrainResult) -> None:
    ev = trained.evaluation
    assert ev is not None
    assert ev.model["users_evaluated"] == ev.baseline["users_evaluated"] > 0
    assert ev.model["ndcg_at_10"] > ev.baseline["ndcg_at_10"]
    assert ev.crosssell["crosssell_hit_at_10"] > ev.crosssell_baseline["crosssell_hit_at_10"]
    assert ev.split["method"] == "chronological"
    assert ev.split["test_users_unseen"] >= 0
    flat = ev.flat()
    assert flat["ndcg_at_10"] == ev.model["ndcg_at_10"]
    assert flat["baseline_ndcg_at_10"] == ev.baseline["ndcg_at_10"]


def test_the_artifact_holds_the_refit_on_all_events_and_says_so(
    trained: TrainResult, dataset: Dataset
) -> None:
    manifest = json.loads((trained.artifact / "manifest.json").read_text())
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["model"]["kind"] == "cosine"
    assert manifest["trained_on"].startswith("all events given (refit after evaluation)")
    assert manifest["data"]["fingerprint"] == "abc123"
    assert manifest["metrics"]["model"]["ndcg_at_10"] == trained.evaluation.model["ndcg_at_10"]  # type: ignore[union-attr]
    assert manifest["counts"]["users"] == len(dataset.interactions.users)
    assert {"numpy", "implicit", "python"} <= set(manifest["versions"])
    assert not list(trained.artifact.rglob("*.pkl"))


def test_artifact_round_trip_gives_identical_recommendations(trained: TrainResult, dataset: Dataset) -> None:
    artifact = load_artifact(trained.artifact)
    model = load_model(artifact.model_dir)
    fresh = create_model("cosine")
    fresh.fit(dataset.interactions.matrix)
    users = np.arange(100)
    got, _ = model.recommend(artifact.history[users], 10, user_idx=users)
    want, _ = fresh.recommend(dataset.interactions.matrix[users], 10, user_idx=users)
    np.testing.assert_array_equal(got, want)
    assert artifact.users == dataset.interactions.users
    assert artifact.item_meta["name"].tolist() == dataset.interactions.item_meta["name"].tolist()
    assert artifact.copurchase.n_baskets > 0 and artifact.coview is not None


def test_holdout_none_fits_on_everything_without_evaluating(dataset: Dataset, tmp_path: Path) -> None:
    result = run_training(dataset, TrainConfig(model="popular", holdout=None), tmp_path / "b", DATA)
    assert result.evaluation is None
    assert result.manifest.record["trained_on"] == "all events given"
    assert result.manifest.record["metrics"] == {}


@pytest.fixture
def artifact_copy(trained: TrainResult, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained.artifact, tmp_path / "copy"))


def test_a_changed_artifact_file_fails_the_checksum_naming_the_file(artifact_copy: Path) -> None:
    (artifact_copy / "popularity.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ArtifactError, match=r"popularity\.npy: checksum mismatch"):
        load_artifact(artifact_copy)


def test_a_missing_artifact_file_is_named(artifact_copy: Path) -> None:
    (artifact_copy / "history.npz").unlink()
    with pytest.raises(ArtifactError, match=r"history\.npz: missing from the artifact"):
        load_artifact(artifact_copy)


def test_a_corrupt_file_fails_clearly_even_without_checksums(artifact_copy: Path) -> None:
    (artifact_copy / "history.npz").write_bytes(b"PK not really")
    with pytest.raises(ArtifactError, match=r"history\.npz: cannot be read"):
        load_artifact(artifact_copy, verify=False)


def test_an_unknown_schema_version_is_refused(artifact_copy: Path) -> None:
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema version 99 is not supported"):
        load_artifact(artifact_copy)


def test_a_directory_that_is_not_an_artifact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such artifact directory"):
        load_artifact(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match=r"manifest\.json: missing"):
        load_artifact(tmp_path / "empty")


def _rewrite_manifest(directory: Path, **changes: object) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest.update(changes)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_m11_a_manifest_that_lists_no_files_is_refused(artifact_copy: Path) -> None:
    _rewrite_manifest(artifact_copy, files={})
    with pytest.raises(ArtifactError, match="lists no files"):
        load_artifact(artifact_copy)


def test_m11_a_file_the_manifest_does_not_list_is_refused(artifact_copy: Path) -> None:
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    del manifest["files"]["popularity.npy"]
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"does not list: \['popularity\.npy'\]"):
        load_artifact(artifact_copy)


def test_m11_a_signed_artifact_loads_and_an_altered_or_unsigned_one_is_refused(
    artifact_copy: Path, tmp_path: Path
) -> None:
    from features.artifact import sign_artifact

    unsigned = Path(shutil.copytree(artifact_copy, tmp_path / "unsigned"))
    sign_artifact(artifact_copy, "k" * 32)
    assert load_artifact(artifact_copy, signing_key="k" * 32).manifest.signature.startswith("hmac-sha256:")
    with pytest.raises(ArtifactError, match="does not match"):
        load_artifact(artifact_copy, signing_key="another key of enough length!!")
    with pytest.raises(ArtifactError, match="is not signed"):
        load_artifact(unsigned, signing_key="k" * 32)
    _rewrite_manifest(artifact_copy, metrics={"ndcg@10": 0.99})
    with pytest.raises(ArtifactError, match="does not match"):
        load_artifact(artifact_copy, signing_key="k" * 32)


def test_m11_training_signs_with_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.lifecycle import _target
    from training.options import TargetOptions

    monkeypatch.setenv("ORDERLIFT_ARTIFACT_SIGNING_KEY", "s" * 32)
    assert _target(TargetOptions(track=False), "als").signing_key == "s" * 32


def test_the_signing_keys_name_before_the_rename_still_signs_and_still_guards_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.config import Settings
    from training.lifecycle import _target
    from training.options import TargetOptions

    monkeypatch.delenv("ORDERLIFT_ARTIFACT_SIGNING_KEY", raising=False)
    monkeypatch.setenv("ORDERLIFT_BUNDLE_SIGNING_KEY", "o" * 32)
    assert _target(TargetOptions(track=False), "als").signing_key == "o" * 32
    key = Settings().artifact_signing_key
    assert key is not None and key.get_secret_value() == "o" * 32


def test_a_schema_2_manifest_still_loads_with_its_id_and_weights(artifact_copy: Path) -> None:
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    weights = manifest.pop("weights")
    manifest |= {"schema_version": 2, "bundle_id": manifest.pop("artifact_id")}
    manifest["config"]["weights"] = {**weights, "purchase": 12.0}
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_artifact(artifact_copy).manifest
    assert loaded.schema_version == 2 and loaded.artifact_id == manifest["bundle_id"]
    assert loaded.weights["purchase"] == 12.0 and "bundle_id" not in loaded.record


def test_a_schema_1_manifest_is_refused_saying_what_to_do(artifact_copy: Path) -> None:
    _rewrite_manifest(artifact_copy, schema_version=1)
    with pytest.raises(ArtifactError, match="predates trained cart models: retrain"):
        load_artifact(artifact_copy)


def test_a_manifest_with_a_bad_field_is_refused_naming_it(artifact_copy: Path) -> None:
    manifest = json.loads((artifact_copy / "manifest.json").read_text())
    manifest["crosssell"]["kind"] = 7
    (artifact_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"crosssell\.kind must be a str, got 7"):
        load_artifact(artifact_copy)


def test_the_typed_manifest_holds_what_training_wrote(trained: TrainResult) -> None:
    written = json.loads((trained.artifact / "manifest.json").read_text())
    spec = load_artifact(trained.artifact).manifest
    assert spec == trained.manifest
    assert spec.model.kind == written["model"]["kind"]
    assert spec.crosssell.kind == written["crosssell"]["kind"]
    assert spec.crosssell.price_exponent == written["crosssell"]["price_exponent"]
    assert spec.weights == {k: float(v) for k, v in written["config"]["weights"].items()}
    assert spec.live_weights["click"] == spec.weights["view"]
