"""The data report on a tiny hand-written shop file, with every number computed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from features.dataset import load_dataset
from features.io import SourceFormat
from features.matrix import Weighting
from features.report import BASKET_SIZE_BINS, data_report

#: 13 rows: 8 accepted, 2 anonymous, one view without a user, one exact duplicate of row 1, one
#: zero quantity. Orders: O1 = {a, b, c} worth 2*1.5 + 4 + 2 = 9.0; O2 = {a, b} worth 1.5 + 3*4 =
#: 13.5; O3 = {a} worth 4*1.25 = 5.0. Purchases per item: a 3, b 2, c 1, d 0 (only viewed).
#: Anonymous order O9 = {a, z}; z is bought by no known user, so only the line of a is kept.
TINY = """\
user_id,item_id,timestamp,event_type,order_id,quantity,price,item_name
u1,a,2024-01-01 10:00:00,purchase,O1,2,1.50,Mug
u1,b,2024-01-01 10:00:00,purchase,O1,1,4.00,Plate
u1,c,2024-01-01 10:00:00,purchase,O1,1,2.00,Bowl
u2,a,2024-01-03 12:00:00,purchase,O2,1,1.50,Mug
u2,b,2024-01-03 12:00:00,purchase,O2,3,4.00,Plate
u3,a,2024-01-05 09:30:00,purchase,O3,4,1.25,Mug
u3,d,2024-01-04 08:00:00,view,,,,Spoon
u2,c,2024-01-02 08:00:00,cart,,1,,Bowl
,a,2024-01-05 10:00:00,purchase,O9,1,1.5,Mug
,z,2024-01-05 10:00:00,purchase,O9,1,2.0,Fork
,d,2024-01-05 11:00:00,view,,,,Spoon
u1,a,2024-01-01 10:00:00,purchase,O1,2,1.50,Mug
u1,b,2024-01-06 10:00:00,purchase,O4,0,4.0,Plate
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(TINY)
    return path


def report_of(path: Path, **kwargs: Any) -> dict[str, Any]:
    dataset = load_dataset(path, SourceFormat(), **kwargs)
    return data_report(
        dataset.validation.report, dataset.events, dataset.interactions, anonymous=dataset.anonymous
    )


def test_report_reconciles_rows_read_accepted_and_rejected(tiny: Path):
    report = report_of(tiny)

    assert report["rows_read"] == 13
    assert report["rows_accepted"] == 8
    assert report["rows_anonymous"] == 2
    assert {k: v for k, v in report["rejected"].items() if v} == {
        "missing_user": 1,
        "bad_quantity": 1,
        "duplicate": 1,
    }
    assert report["reconciled"] is True
    assert report["returns"]["rows"] == 0


def test_report_counts_users_items_interactions_and_orders(tiny: Path):
    report = report_of(tiny)

    assert report["users"] == 3
    assert report["items"] == 4
    assert report["interactions"] == 8  # u1:a,b,c  u2:a,b,c  u3:a,d
    assert report["density"] == pytest.approx(8 / 12)
    assert report["orders"] == 3
    assert report["event_types"] == {"purchase": 6, "view": 1, "cart": 1}


def test_report_counts_anonymous_orders_apart_from_the_identified_ones(tiny: Path):
    report = report_of(tiny)

    assert report["anonymous_rows"] == 1  # O9's line of a; z is outside the item index
    assert report["anonymous_orders"] == 1
    assert report["orders"] == 3
    assert report["orders_with_anonymous"] == 4
    assert report["basket_sizes"]["mean"] == 2.0  # sizes and values describe identified orders
    assert report["order_value"]["mean"] == pytest.approx((9.0 + 13.5 + 5.0) / 3)


def test_report_without_anonymous_lines_counts_none(tiny: Path):
    dataset = load_dataset(tiny, SourceFormat())

    report = data_report(dataset.validation.report, dataset.events, dataset.interactions)

    assert report["anonymous_rows"] == 0
    assert report["anonymous_orders"] == 0
    assert report["orders_with_anonymous"] == report["orders"] == 3
    assert report["rows_anonymous"] == 2  # validation still counts them


def test_dataset_keeps_anonymous_lines_of_indexed_items_only(tiny: Path):
    dataset = load_dataset(tiny, SourceFormat())

    assert dataset.validation.anonymous["item_id"].tolist() == ["a", "z"]
    assert dataset.anonymous["item_id"].tolist() == ["a"]
    assert dataset.anonymous["order_id"].tolist() == ["O9"]
    assert dataset.anonymous["user_id"].isna().all()


def test_dataset_restricts_anonymous_lines_to_the_items_left_after_kcore(tmp_path: Path):
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,timestamp,event_type,order_id,quantity,price\n"
        "u1,a,2024-01-01,purchase,O1,1,1.0\n"
        "u2,a,2024-01-01,purchase,O2,1,1.0\n"
        "u2,b,2024-01-01,purchase,O2,1,1.0\n"
        ",a,2024-01-02,purchase,O3,1,1.0\n"
        ",b,2024-01-02,purchase,O3,1,1.0\n"
    )

    dataset = load_dataset(path, SourceFormat(), min_item=2)  # b has one buyer: dropped

    assert dataset.interactions.items.ids.tolist() == ["a"]
    assert dataset.anonymous["item_id"].tolist() == ["a"]


def test_report_date_range_is_the_first_and_last_accepted_event(tiny: Path):
    report = report_of(tiny)

    assert report["date_min"] == "2024-01-01T10:00:00+00:00"
    assert report["date_max"] == "2024-01-05T09:30:00+00:00"  # the rejected 6 Jan row is not counted


def test_report_basket_size_distribution_and_order_value(tiny: Path):
    report = report_of(tiny)

    assert report["basket_sizes"] == {
        "mean": 2.0,
        "median": 2.0,
        "distribution": {"1": 1, "2": 1, "3-5": 1, "6-10": 0, "11-20": 0, "21-50": 0, "51+": 0},
    }
    assert report["order_value"]["mean"] == pytest.approx((9.0 + 13.5 + 5.0) / 3)
    assert report["order_value"]["median"] == pytest.approx(9.0)


def test_report_top_items_rank_purchased_items_with_their_metadata(tiny: Path):
    report = report_of(tiny, weighting=Weighting(quantity_scale="none"))

    assert report["top_items"][:3] == [
        {"item_id": "a", "name": "Mug", "category": "", "price": 1.5, "events": 3},
        {"item_id": "b", "name": "Plate", "category": "", "price": 4.0, "events": 2},
        {"item_id": "c", "name": "Bowl", "category": "", "price": 2.0, "events": 1},
    ]


def test_report_top_items_honours_the_limit(tiny: Path):
    dataset = load_dataset(tiny, SourceFormat())

    report = data_report(dataset.validation.report, dataset.events, dataset.interactions, top=2)

    assert [t["item_id"] for t in report["top_items"]] == ["a", "b"]


def test_report_top_items_leave_out_items_that_were_never_purchased(tiny: Path):
    report = report_of(tiny)

    assert [t["item_id"] for t in report["top_items"]] == ["a", "b", "c"]
    assert all(t["events"] > 0 for t in report["top_items"])


def test_report_is_json_serialisable_and_has_every_documented_key(tiny: Path):
    report = report_of(tiny)

    assert json.loads(json.dumps(report)) == report
    assert {
        "rows_read",
        "rows_accepted",
        "rejected",
        "returns",
        "reconciled",
        "users",
        "items",
        "interactions",
        "density",
        "orders",
        "rows_anonymous",
        "anonymous_rows",
        "anonymous_orders",
        "orders_with_anonymous",
        "date_min",
        "date_max",
        "event_types",
        "basket_sizes",
        "order_value",
        "top_items",
    } <= set(report)
    assert list(report["basket_sizes"]["distribution"]) == [label for label, _, _ in BASKET_SIZE_BINS]


def test_report_after_kcore_describes_the_filtered_events(tiny: Path):
    report = report_of(tiny, min_user=3)

    # only u1 and u2 touched three distinct items
    assert report["users"] == 2
    assert report["items"] == 3
    assert report["orders"] == 2
    assert report["rows_accepted"] == 8  # validation counts are before filtering
    assert report["date_max"] == "2024-01-03T12:00:00+00:00"


def test_load_dataset_writes_the_quarantine_and_attaches_the_catalog(tiny: Path, tmp_path: Path):
    items = tmp_path / "items.csv"
    items.write_text("item_id,name,category,price\na,Blue mug,Kitchen,1.75\n")
    quarantine = tmp_path / "quarantine.csv"

    dataset = load_dataset(tiny, SourceFormat(), items_path=items, quarantine=quarantine)
    report = data_report(dataset.validation.report, dataset.events, dataset.interactions)

    assert len(quarantine.read_text().splitlines()) == 1 + 3
    assert dataset.catalog is not None and dataset.catalog["item_id"].tolist() == ["a"]
    assert report["top_items"][0] == {
        "item_id": "a",
        "name": "Blue mug",
        "category": "Kitchen",
        "price": 1.75,
        "events": 3,
    }


def test_report_of_a_shop_without_orders_has_zero_baskets(tmp_path: Path):
    path = tmp_path / "views.csv"
    path.write_text("user_id,item_id,timestamp,event_type\nu1,a,2024-01-01,view\nu2,a,2024-01-02,view\n")

    report = report_of(path)

    assert report["orders"] == 0
    assert report["basket_sizes"]["mean"] == 0.0
    assert report["order_value"] == {"mean": 0.0, "median": 0.0}
    assert report["top_items"] == [{"item_id": "a", "name": "a", "category": "", "price": None, "events": 2}]
