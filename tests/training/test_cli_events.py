"""Exporting live events for retraining, and the experiments report from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()

T = "2026-01-0{}T10:0{}:00+00:00"
REC = {"recommendation_id": "production.x", "variant": "production"}
EVENTS = [
    {"event_id": "1", "user_id": "u1", "item_id": "a", "type": "impression", "timestamp": T.format(1, 0),
     **REC},
    {"event_id": "2", "user_id": "u1", "item_id": "a", "type": "click", "timestamp": T.format(1, 1), **REC},
    {"event_id": "3", "user_id": "u1", "item_id": "a", "type": "purchase", "timestamp": T.format(1, 2),
     "order_id": "o1", "quantity": 2, "price": 5.0, **REC},
    {"event_id": "4", "user_id": "u2", "item_id": "b", "type": "cart", "timestamp": T.format(2, 0)},
    {"event_id": "5", "user_id": "u2", "item_id": "a", "type": "purchase", "timestamp": T.format(2, 5),
     "order_id": "o2", "price": 5.0},
]  # fmt: skip


def _log(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return path


def test_export_writes_the_pipelines_format_and_train_reads_it(tmp_path: Path) -> None:
    out = tmp_path / "live.parquet"
    result = runner.invoke(app, ["events", "export", "--log", str(_log(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert list(frame.columns) == [
        "user_id",
        "item_id",
        "event_type",
        "timestamp",
        "order_id",
        "quantity",
        "price",
    ]
    assert frame["event_type"].tolist() == [
        "view",
        "purchase",
        "cart",
        "purchase",
    ]  # click -> view, no impression
    trained = runner.invoke(
        app,
        ["train", "--events", str(out), "--model", "popular", "--holdout", "none", "--no-track",
         "--out", str(tmp_path / "artifact")],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "2 users x 2 items" in trained.output


def test_export_can_append_live_events_to_a_history_file(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text(
        "user_id,item_id,event_type,timestamp,order_id,quantity,price\n"
        "u9,z,purchase,2025-12-01 10:00:00,o0,1,3.0\n"
    )
    out = tmp_path / "all.csv"
    args = ["events", "export", "--log", str(_log(tmp_path)), "--out", str(out), "--append-to", str(history)]
    assert runner.invoke(app, args).exit_code == 0
    assert len(pd.read_csv(out)) == 5


def test_experiments_report_prints_json_per_variant(tmp_path: Path) -> None:
    result = runner.invoke(app, ["experiments", "report", "--log", str(_log(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    arm = report["variants"]["production"]
    assert (arm["impressions"], arm["clicks"], arm["orders"], arm["revenue"]) == (1, 1, 1, 10.0)
    assert report["events_ignored"] == 2
    table = runner.invoke(app, ["experiments", "report", "--log", str(_log(tmp_path))])
    assert table.exit_code == 0 and "revenue_per_user" in table.output


def test_export_without_a_log_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["events", "export", "--log", str(tmp_path / "none.jsonl"), "--out", "x.parquet"]
    )
    assert result.exit_code == 2 and "no event log here" in result.stderr
