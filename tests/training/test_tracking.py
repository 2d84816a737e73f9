"""MLflow on a temporary SQLite store: runs, artifacts, registry, aliases, compare; sweeps stay honest."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from features.dataset import Dataset
from training import tracking
from training.cli import app
from training.errors import TrackingError
from training.job import TrainConfig
from training.sweep import candidates, parse_grid, sweep

runner = CliRunner()


@pytest.fixture
def store_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _train(store_dir: Path, *extra: str) -> str:
    result = runner.invoke(
        app,
        [
            "train",
            "--events",
            str(store_dir / "events.csv"),
            "--items",
            str(store_dir / "items.csv"),
            "--model",
            "cosine",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output + str(result.exception)
    return result.output


def test_a_training_run_is_logged_with_params_metrics_artifacts_and_registered(
    store_dir: Path, store_uri: str
) -> None:
    output = _train(store_dir)
    assert "registered: models:/orderlift/1, alias @candidate" in output
    tracking.configure(store_uri)
    run = mlflow.search_runs(experiment_names=["orderlift"], output_format="list")[0]
    assert run.data.params["model"] == "cosine"
    assert run.data.params["params.neighbours"] == "100"
    assert run.data.params["weights.purchase"] == "10.0"
    assert run.data.metrics["ndcg_at_10"] > run.data.metrics["baseline_ndcg_at_10"]
    assert len(run.data.tags["data_fingerprint"]) == 64
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert {"model", "reports", "plots"} <= artifacts
    artifact_files = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "model")}
    assert {"model/MLmodel", "model/artifacts", "model/input_example.json"} <= artifact_files
    version = MlflowClient().get_model_version_by_alias("orderlift", "candidate")
    assert version.run_id == run.info.run_id
    local = mlflow.artifacts.download_artifacts("models:/orderlift@candidate")
    assert (Path(local) / "artifacts" / "orderlift" / "manifest.json").is_file()


def test_a_registered_version_is_an_mlflow_model_that_recommends_without_pickle(
    store_dir: Path, store_uri: str
) -> None:
    import pandas as pd

    from features.artifact import load_artifact
    from service.loading import load

    _train(store_dir)
    tracking.configure(store_uri)
    local = Path(mlflow.artifacts.download_artifacts("models:/orderlift@candidate"))
    assert not list(local.rglob("*.pkl")) and "python_function" in (local / "MLmodel").read_text()
    model = mlflow.pyfunc.load_model("models:/orderlift@candidate")
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["user_id", "n"]
    artifact = load_artifact(local / "artifacts" / "orderlift")
    user = str(artifact.users.ids[0])
    found = model.predict(pd.DataFrame({"user_id": [user, "nobody"], "n": [5, 3]}))
    assert [len(items) for items in found["item_ids"]] == [5, 3]
    assert all(type(i) is str for items in found["item_ids"] for i in items)
    bought = set(artifact.items.ids[artifact.history[0].indices].astype(str))
    assert not bought & set(found["item_ids"][0])  # what the user has is left out
    top = artifact.items.ids[int(artifact.popularity.argmax())]
    assert found["item_ids"][1][0] == top  # an unknown user gets the most popular items
    served = load("models:/orderlift@candidate", store_uri)  # the service reads the artifact inside
    assert served.version == "orderlift/1" and len(served.artifact.users) == len(artifact.users)


def test_promote_moves_an_alias_by_version_or_by_run(store_dir: Path, store_uri: str) -> None:
    _train(store_dir)
    _train(store_dir, "--model", "popular")
    tracking.configure(store_uri)
    client = MlflowClient()
    first_run = client.get_model_version("orderlift", "1").run_id
    result = runner.invoke(
        app, ["promote", "--model", "orderlift", "--version", "2", "--alias", "production"]
    )
    assert result.exit_code == 0, result.output
    assert str(client.get_model_version_by_alias("orderlift", "production").version) == "2"
    result = runner.invoke(app, ["promote", "--run", first_run, "--alias", "production"])
    assert result.exit_code == 0, result.output
    assert str(client.get_model_version_by_alias("orderlift", "production").version) == "1"
    result = runner.invoke(app, ["promote", "--version", "7", "--alias", "production"])
    assert result.exit_code == 2 and "not found" in result.stderr


def test_compare_ranks_runs_by_the_metric_with_the_baseline_beside(store_dir: Path, store_uri: str) -> None:
    _train(store_dir)
    _train(store_dir, "--model", "popular", "--register", "none")
    result = runner.invoke(app, ["compare", "--metric", "ndcg_at_10", "--json"])
    assert result.exit_code == 0, result.output
    import json

    runs = json.loads(result.stdout)
    assert [r["params.model"] for r in runs] == ["cosine", "popular"]
    assert runs[0]["metrics.ndcg_at_10"] >= runs[1]["metrics.ndcg_at_10"]
    assert "metrics.baseline_ndcg_at_10" in runs[0]
    bad = runner.invoke(app, ["compare", "--metric", "nope"])
    assert bad.exit_code == 2 and "no runs logged metric 'nope'" in bad.stderr


def test_promote_without_a_version_or_run_is_refused(store_uri: str) -> None:
    tracking.configure(store_uri)
    with pytest.raises(TrackingError, match="give --version, --run or --from-alias"):
        tracking.promote("orderlift", "production")


def test_sweep_chooses_on_the_train_period_and_never_sees_the_test_split(dataset: Dataset) -> None:
    config = TrainConfig(model="als", params={"iterations": 3}, holdout=0.2)
    seen = []
    result = sweep(
        dataset,
        config,
        parse_grid(["factors=8,16"]),
        trials=None,
        on_trial=lambda number, total, trial: seen.append(trial),
    )
    assert len(seen) == 2
    assert result.test_cutoff is not None
    assert all(t.latest_event_seen < result.test_cutoff for t in seen)
    assert result.best in seen
    assert result.best.metrics["ndcg_at_10"] == max(t.metrics["ndcg_at_10"] for t in seen)
    assert result.test.split["cutoff"] == result.test_cutoff.isoformat()


def test_random_search_picks_distinct_grid_points_reproducibly() -> None:
    grid = parse_grid(["factors=8,16,32", "regularization=0.01,0.1"])
    picks = candidates(grid, trials=3, seed=1)
    assert len(picks) == 3 and len({tuple(sorted(p.items())) for p in picks}) == 3
    assert picks == candidates(grid, trials=3, seed=1)
    assert len(candidates(grid, trials=None, seed=1)) == 6
    with pytest.raises(ValueError, match="is not of the form name=v1,v2"):
        parse_grid(["factors"])


def test_an_auto_sweep_tries_every_family_and_stops_at_its_budget(dataset: Dataset) -> None:
    from training.sweep import AUTO_GRID, auto_candidates

    config = TrainConfig(model="auto", holdout=0.2)
    result = sweep(dataset, config, {}, budget_minutes=0.0)
    assert sorted(t.model for t in result.trials) == sorted(AUTO_GRID)  # each family's defaults, then stop
    assert result.skipped == len(auto_candidates(42)) - len(AUTO_GRID) > 0
    board = result.leaderboard()
    assert board[0] is result.best and result.best.metrics["ndcg_at_10"] == max(
        t.metrics["ndcg_at_10"] for t in result.trials
    )
    assert all(t.latest_event_seen < result.test_cutoff for t in result.trials)  # type: ignore[operator]
    assert result.test.model["ndcg_at_10"] >= 0.0
    assert len({(m, tuple(sorted(p.items()))) for m, p in auto_candidates(42)}) == len(auto_candidates(42))


def test_sweep_auto_from_the_command_line_registers_the_winner_with_its_leaderboard(
    store_dir: Path, store_uri: str
) -> None:
    result = runner.invoke(
        app,
        ["sweep", "--events", str(store_dir / "events.csv"), "--items", str(store_dir / "items.csv"),
         "--model", "auto", "--budget", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + str(result.exception)
    assert "Leaderboard" in result.output and "winner on validation ndcg_at_10:" in result.output
    tracking.configure(store_uri)
    parent = [r for r in mlflow.search_runs(experiment_names=["orderlift"], output_format="list")
              if "mlflow.parentRunId" not in r.data.tags]  # fmt: skip
    children = [r for r in mlflow.search_runs(experiment_names=["orderlift"], output_format="list")
                if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]  # fmt: skip
    assert len(children) == 8 and {c.data.params["model"] for c in children} >= {"als", "ease", "bpr"}
    winner = max(children, key=lambda c: c.data.metrics["val_ndcg_at_10"]).data.params["model"]
    assert parent[0].data.params["model"] == winner
    bad = runner.invoke(app, ["sweep", "--events", str(store_dir / "events.csv"), "--model", "auto",
                              "--grid", "factors=8"])  # fmt: skip
    assert bad.exit_code == 2 and "drop --grid" in bad.stderr
