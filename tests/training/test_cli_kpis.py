"""``orderlift kpis``: the shop's KPIs of a history file, as JSON, a table or a CSV file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from tests.features.test_kpis import EVENTS, ITEMS
from training.cli import app


def _store(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(ITEMS)
    return tmp_path / "events.csv", tmp_path / "items.csv"


def test_kpis_prints_the_monthly_series_as_json_and_writes_it_as_csv(tmp_path: Path) -> None:
    events, items = _store(tmp_path)
    out = tmp_path / "kpis.csv"
    args = ["kpis", "--events", str(events), "--items", str(items), "--json", "--csv", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    series = json.loads(result.output)
    assert series["by"] == "month" and series["discount_basis"] == "cost"
    assert [(r["period"], r["orders"], r["revenue"]) for r in series["rows"]] == [
        ("2026-01", 3, 53.0), ("2026-02", 2, 40.0), ("all", 5, 93.0),
    ]  # fmt: skip
    rows = list(csv.DictReader(out.open()))
    assert [r["period"] for r in rows] == ["2026-01", "2026-02", "all"] and rows[0]["source"] == "history"


def test_kpis_by_week_prints_a_table(tmp_path: Path) -> None:
    events, _ = _store(tmp_path)
    result = CliRunner().invoke(app, ["kpis", "--events", str(events), "--by", "week"])
    assert result.exit_code == 0, result.output
    assert (
        "KPIs per week" in result.output and "2026-01-05" in result.output and "below list" in result.output
    )


def test_kpis_with_a_bad_period_exits_2_naming_it(tmp_path: Path) -> None:
    events, _ = _store(tmp_path)
    result = CliRunner().invoke(app, ["kpis", "--events", str(events), "--by", "year"])
    assert result.exit_code == 2 and "--by" in result.output and "year" in result.output
