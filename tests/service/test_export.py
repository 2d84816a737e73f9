"""The campaign export: every known user's list in a file, as the service would answer at that placement."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.artifact import ModelArtifact
from service.app import create_app
from service.config import Settings
from training.cli import app as cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Return the environment of a shop without Redis whose rules live beside its own event log."""
    for name in ("ORDERLIFT_REDIS_URL", "ORDERLIFT_EVENTS_REDIS_URL", "ORDERLIFT_MODEL_URI"):
        monkeypatch.delenv(name, raising=False)
    return {"ORDERLIFT_EVENT_LOG": str(tmp_path / "events.jsonl")}


def _export(artifact_dir: Path, out: Path, env: dict[str, str], *extra: str) -> str:
    args = ["export-recommendations", "--model-uri", str(artifact_dir), "--out", str(out), *extra]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _lists(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["user_id"], int(r["rank"]))):
        found[row["user_id"]].append(row["item_id"])
    return found


def test_the_csv_export_has_every_user_with_the_list_the_service_answers_and_its_clicks_are_attributed(
    artifact_dir: Path, artifact: ModelArtifact, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "campaign" / "email.csv"
    output = _export(artifact_dir, out, env, "--n", "6", "--batch", "7", "--channel", "email")
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    lists = _lists(rows)
    assert len(lists) == len(artifact.users) and f"for {len(artifact.users):,} users" in output
    assert all(len(items) == 6 for items in lists.values())
    ids = {row["user_id"]: row["recommendation_id"] for row in rows}
    assert all(i.startswith("default.email.email.") for i in ids.values()) and len(set(ids.values())) == len(
        ids
    )
    settings = Settings(model_uri=str(artifact_dir), event_log=Path(env["ORDERLIFT_EVENT_LOG"]))
    with TestClient(create_app(settings)) as client:
        for user in [str(u) for u in artifact.users.ids[:25]]:
            served = client.get(f"/v1/users/{user}/recommendations", params={"n": 6, "placement": "email"})
            assert lists[user] == [i["item_id"] for i in served.json()["items"]]
        user = str(artifact.users.ids[0])
        clicked = {"user_id": user, "item_id": lists[user][0], "recommendation_id": ids[user]}
        events = [
            {**clicked, "type": "click"},
            {**clicked, "type": "purchase", "price": 12.5, "order_id": "o1"},
        ]
        assert client.post("/v1/events", json={"events": events}).status_code == 202
        report = client.get("/v1/experiments/report").json()
    email = report["by_placement"]["email"]
    assert (email["clicks"], email["orders"], email["revenue"]) == (1, 1, 12.5)
    assert report["by_channel"]["email"]["clicks"] == 1


def test_the_export_follows_a_rule_for_its_placement_and_writes_parquet(
    artifact_dir: Path, artifact: ModelArtifact, env: dict[str, str], tmp_path: Path
) -> None:
    plain = tmp_path / "plain.parquet"
    _export(artifact_dir, plain, env, "--format", "parquet", "--channel", "push")
    table = pq.read_table(plain)
    assert table.column_names[:4] == ["user_id", "recommendation_id", "rank", "item_id"]
    counts = table.column("item_id").value_counts().to_pylist()
    top = max(counts, key=lambda c: c["counts"])["values"]
    settings = Settings(model_uri=str(artifact_dir), event_log=Path(env["ORDERLIFT_EVENT_LOG"]))
    with TestClient(create_app(settings)) as client:
        rule = {"action": "hide", "item_ids": [top], "placements": ["email"]}
        assert client.post("/v1/admin/rules", json=rule).status_code == 201
    hidden = tmp_path / "hidden.parquet"
    _export(artifact_dir, hidden, env, "--format", "parquet", "--channel", "push")
    elsewhere = tmp_path / "home.parquet"
    _export(artifact_dir, elsewhere, env, "--format", "parquet", "--placement", "home")
    assert top not in pq.read_table(hidden).column("item_id").to_pylist()
    assert top in pq.read_table(elsewhere).column("item_id").to_pylist()
    assert all(i.startswith("default.email.push.") for i in table.column("recommendation_id").to_pylist())


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--placement", "Home Page"], "--placement 'Home Page'"),
        (["--format", "xlsx"], "--format"),
        (["--n", "0"], "--n"),
    ],
)
def test_a_bad_export_option_exits_2_naming_it(
    artifact_dir: Path, env: dict[str, str], tmp_path: Path, args: list[str], named: str
) -> None:
    out = tmp_path / "x.csv"
    cmd = ["export-recommendations", "--model-uri", str(artifact_dir), "--out", str(out), *args]
    result = CliRunner().invoke(cli, cmd, env=env)
    assert result.exit_code == 2 and named in result.output and not out.exists()


def test_the_export_leaves_out_what_live_events_dismissed_or_bought_since_training(
    artifact_dir: Path, artifact: ModelArtifact, env: dict[str, str], tmp_path: Path
) -> None:
    before = tmp_path / "before.csv"
    _export(artifact_dir, before, env, "--n", "6")
    with before.open() as handle:
        first = _lists(list(csv.DictReader(handle)))
    user = str(artifact.users.ids[0])
    dismissed, bought = first[user][0], first[user][1]
    settings = Settings(model_uri=str(artifact_dir), event_log=Path(env["ORDERLIFT_EVENT_LOG"]))
    with TestClient(create_app(settings)) as client:
        events = [
            {"user_id": user, "item_id": dismissed, "type": "dismiss"},
            {"user_id": user, "item_id": bought, "type": "purchase", "price": 3.0, "order_id": "o9"},
        ]
        assert client.post("/v1/events", json={"events": events}).status_code == 202
        served = client.get(f"/v1/users/{user}/recommendations", params={"n": 6, "placement": "email"})
        again = client.get(f"/v1/users/{user}/reorder", params={"n": 6})
    after, reorder = tmp_path / "after.csv", tmp_path / "reorder.csv"
    output = _export(artifact_dir, after, env, "--n", "6")
    _export(artifact_dir, reorder, env, "--n", "6", "--placement", "reorder")
    assert "2 live events read" in " ".join(output.split())
    with after.open() as handle:
        lists = _lists(list(csv.DictReader(handle)))
    assert dismissed not in lists[user] and bought not in lists[user]
    assert lists[user] == [i["item_id"] for i in served.json()["items"]]
    assert lists[str(artifact.users.ids[1])] == first[str(artifact.users.ids[1])]  # no one else's list moved
    with reorder.open() as handle:
        due = _lists(list(csv.DictReader(handle)))
    assert due[user] == [i["item_id"] for i in again.json()["items"]]


def test_an_export_from_the_registry_names_the_variant_the_service_serves_it_as(
    artifact_dir: Path, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from training import tracking

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.configure(uri)
    client = MlflowClient()
    client.create_registered_model("shop")
    version = client.create_model_version("shop", source=str(artifact_dir))
    client.set_registered_model_alias("shop", "production", version.version)
    out = tmp_path / "email.csv"
    args = ["export-recommendations", "--model-uri", "models:/shop@production", "--out", str(out)]
    result = CliRunner().invoke(cli, args, env={**env, "ORDERLIFT_MLFLOW_TRACKING_URI": uri})
    assert result.exit_code == 0, result.output
    with out.open() as handle:
        ids = {row["recommendation_id"] for row in csv.DictReader(handle)}
    assert ids and all(i.startswith("production.email.-.") for i in ids)
