"""The inspect command: a readable report, a JSON report, and one-line errors for bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()

SHOP_CSV = """\
Customer,Sku,When,Invoice,Qty,Price,Kind
17850.0,A,2024-01-01 10:00:00,1001,2,3.50,purchase
17850.0,B,2024-01-01 10:00:00,1001,1,10.00,purchase
17850.0,A,2024-01-02 09:00:00,C1002,-1,3.50,purchase
,A,2024-01-02 11:00:00,1003,1,3.50,purchase
,B,2024-01-02 11:30:00,,1,10.00,purchase
13047.0,POST,2024-01-03 12:00:00,1004,1,18.00,purchase
13047.0,C,not a date,1005,1,2.00,purchase
13047.0,C,2024-01-04 12:00:00,1006,1,2.00,purchase
13047.0,C,2024-01-04 12:00:00,1006,1,2.00,purchase
"""
MAPPING = "user_id=Customer,item_id=Sku,timestamp=When,order_id=Invoice,quantity=Qty,price=Price"


@pytest.fixture
def shop_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.csv.gz"
    path.write_bytes(gzip.compress(SHOP_CSV.encode()))
    return path


def _inspect(path: Path, *extra: str) -> list[str]:
    return [
        "inspect",
        "--events",
        str(path),
        "--map",
        MAPPING,
        "--event-type",
        "purchase",
        "--cancel-prefix",
        "C",
        "--non-product",
        "POST",
        *extra,
    ]


def test_inspect_json_reconciles_every_row_with_its_reason(shop_file: Path, tmp_path: Path) -> None:
    quarantine = tmp_path / "rejected.csv"
    result = runner.invoke(app, [*_inspect(shop_file, "--json", "--quarantine", str(quarantine))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_read"] == 9
    assert report["rows_accepted"] == 3
    assert report["rows_anonymous"] == 1  # invoice 1003 has no customer: kept for cart models
    assert report["rejected"]["missing_user"] == 1  # no customer and no invoice
    assert report["rejected"]["non_product_item"] == 1
    assert report["rejected"]["bad_timestamp"] == 1
    assert report["rejected"]["return"] == 1
    assert report["rejected"]["duplicate"] == 1
    assert report["rows_read"] == (
        report["rows_accepted"] + report["rows_anonymous"] + sum(report["rejected"].values())
    )
    assert report["reconciled"] is True
    assert report["users"] == 2 and report["items"] == 3 and report["orders"] == 2
    assert report["anonymous_orders"] == 1 and report["anonymous_rows"] == 1
    assert report["orders_with_anonymous"] == 3
    assert report["date_min"].startswith("2024-01-01T10:00:00")
    assert report["date_max"].startswith("2024-01-04T12:00:00")
    assert report["returns"]["matched_quantity"] == 1.0
    assert len(quarantine.read_text().strip().splitlines()) == 1 + 5


def test_inspect_prints_a_readable_report(shop_file: Path) -> None:
    result = runner.invoke(app, _inspect(shop_file))
    assert result.exit_code == 0, result.output
    for text in ("rows read", "Rejected rows", "missing_user", "Basket sizes", "Top items"):
        assert text in result.output
    assert "anonymous orders kept for cart models: 1 orders, 1 rows" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "user_id=Nope"], "column 'Nope' (for user_id) is not in the file"),
        (["--map", "user_id"], "is not of the form column=SourceColumn"),
        (["--map", "shoe_size=Qty"], "unknown column 'shoe_size'"),
        (["--preset", "no-such-shop"], "unknown preset 'no-such-shop'"),
        (["--event-type", "refund"], "event type 'refund'"),
    ],
)
def test_inspect_bad_mapping_ends_with_a_one_line_error(
    shop_file: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, [*_inspect(shop_file), *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_inspect_unreadable_files_end_with_a_one_line_error(tmp_path: Path) -> None:
    binary = tmp_path / "events.csv"
    binary.write_bytes(bytes(range(256)) * 20)
    truncated = tmp_path / "events.csv.gz"
    truncated.write_bytes(gzip.compress(SHOP_CSV.encode())[:40])
    for path, message in (
        (tmp_path / "absent.csv", "no such file"),
        (binary, "not a readable CSV or Parquet file"),
        (truncated, "events.csv.gz"),
    ):
        result = runner.invoke(app, _inspect(path))
        assert result.exit_code == 2, path
        assert message in result.stderr
        assert "Traceback" not in result.output + result.stderr


def test_inspect_shopify_preset_reconciles_every_row_and_shows_no_email(tmp_path: Path) -> None:
    from tests.features.test_presets import SHOPIFY_HEADER, SHOPIFY_ROWS

    path = tmp_path / "orders_export.csv"
    path.write_text("\n".join([SHOPIFY_HEADER, *SHOPIFY_ROWS]) + "\n")
    quarantine = tmp_path / "quarantine.csv"
    result = runner.invoke(
        app,
        ["inspect", "--events", str(path), "--preset", "shopify", "--json", "--quarantine", str(quarantine)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["reconciled"] and report["rows_read"] == 6 and report["rows_accepted"] == 3
    assert report["rejected"]["cancelled"] == 2
    assert "@" not in result.output and "@" not in quarantine.read_text()


def test_inspect_ga4_preset_counts_the_events_in_the_file(tmp_path: Path) -> None:
    from tests.features.test_presets import GA4_EVENTS

    path = tmp_path / "events.json"
    path.write_text("\n".join(json.dumps(e) for e in GA4_EVENTS) + "\n")
    result = runner.invoke(app, ["inspect", "--events", str(path), "--preset", "ga4"])
    assert result.exit_code == 0, result.output
    assert "records in the file" in result.output and "reconciled" in result.output
    assert "NO" not in result.output


def test_hash_id_prints_the_id_presets_store_for_an_email() -> None:
    from features.identity import hash_id

    result = runner.invoke(app, ["hash-id", " Alice@Example.com", "bob@example.com"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [hash_id("alice@example.com"), hash_id("bob@example.com")]
    piped = runner.invoke(app, ["hash-id"], input="alice@example.com\n\n")
    assert piped.output.split() == [hash_id("alice@example.com")]
