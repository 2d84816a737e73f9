"""Validation: one rejection reason per row, returns netting, quarantine, value normalisation."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.io import SourceFormat
from features.schema import Reason
from features.validate import ReturnsReport, ValidationResult, load_events, validate

COLUMNS = ("user_id", "item_id", "timestamp", "event_type", "order_id", "quantity", "price")
Row = tuple[str | None, ...]
Rows = Sequence[Sequence[str | None]]

#: A shop with cancellation invoices and a few non-product stock codes.
SHOP = SourceFormat(cancel_prefix="C", non_product_patterns=("POST", "gift_0001_.*", "DCGS.*"))

#: An accepted purchase of item "a" by "u1" (5 units at 2.0) that other rows can collide with.
BASE: Row = ("u1", "a", "2024-01-01 09:00:00", "purchase", "O1", "5", "2.0")


def table(rows: Rows, columns: tuple[str, ...] = COLUMNS) -> pa.Table:
    """Build a raw string table the way read_table hands it to validate."""
    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)})


def run(rows: Rows, fmt: SourceFormat = SHOP, columns: tuple[str, ...] = COLUMNS) -> ValidationResult:
    return validate(table(rows, columns), fmt)


def nonzero(rejected: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in rejected.items() if v}


def reasons(result: ValidationResult) -> list[str]:
    return result.rejected.column("reason").to_pylist()


# --- every reason, one row at a time -------------------------------------------------------------

REJECTED_ROWS: list[tuple[str, Row, Reason]] = [
    ("missing_user_null", (None, "a", "2024-01-02", "view", None, None, None), Reason.MISSING_USER),
    ("missing_user_blank", ("   ", "a", "2024-01-02", "purchase", None, "1", "1.0"), Reason.MISSING_USER),
    ("missing_item_null", ("u1", None, "2024-01-02", "purchase", "O2", "1", "1.0"), Reason.MISSING_ITEM),
    ("missing_item_blank", ("u1", "", "2024-01-02", "purchase", "O2", "1", "1.0"), Reason.MISSING_ITEM),
    ("timestamp_text", ("u1", "a", "yesterday", "purchase", "O2", "1", "1.0"), Reason.BAD_TIMESTAMP),
    ("timestamp_month_13", ("u1", "a", "2024-13-45", "purchase", "O2", "1", "1.0"), Reason.BAD_TIMESTAMP),
    ("timestamp_blank", ("u1", "a", "", "purchase", "O2", "1", "1.0"), Reason.BAD_TIMESTAMP),
    ("event_wishlist", ("u1", "a", "2024-01-02", "wishlist", "O2", "1", "1.0"), Reason.UNKNOWN_EVENT_TYPE),
    ("event_blank_no_constant", ("u1", "a", "2024-01-02", "", "O2", "1", "1.0"), Reason.UNKNOWN_EVENT_TYPE),
    ("postage", ("u1", "POST", "2024-01-02", "purchase", "O2", "1", "18.0"), Reason.NON_PRODUCT_ITEM),
    (
        "gift_voucher",
        ("u1", "gift_0001_20", "2024-01-02", "purchase", "O2", "1", "20"),
        Reason.NON_PRODUCT_ITEM,
    ),
    ("dcgs_prefix", ("u1", "DCGS0070", "2024-01-02", "purchase", "O2", "1", "1.0"), Reason.NON_PRODUCT_ITEM),
    ("cancel_invoice", ("u1", "a", "2024-01-02", "purchase", "C9", "-1", "2.0"), Reason.RETURN),
    ("cancel_invoice_positive_qty", ("u1", "a", "2024-01-02", "purchase", "C9", "1", "2.0"), Reason.RETURN),
    ("negative_purchase_qty", ("u1", "a", "2024-01-02", "purchase", "O2", "-1", "2.0"), Reason.RETURN),
    ("quantity_text", ("u1", "a", "2024-01-02", "purchase", "O2", "two", "1.0"), Reason.BAD_QUANTITY),
    ("quantity_zero", ("u1", "a", "2024-01-02", "purchase", "O2", "0", "1.0"), Reason.BAD_QUANTITY),
    ("quantity_negative_view", ("u1", "a", "2024-01-02", "view", None, "-1", None), Reason.BAD_QUANTITY),
    ("quantity_negative_cart", ("u1", "a", "2024-01-02", "cart", None, "-2", None), Reason.BAD_QUANTITY),
    ("quantity_infinite", ("u1", "a", "2024-01-02", "purchase", "O2", "inf", "1.0"), Reason.BAD_QUANTITY),
    ("price_text", ("u1", "a", "2024-01-02", "purchase", "O2", "1", "cheap"), Reason.BAD_PRICE),
    ("price_negative", ("u1", "a", "2024-01-02", "purchase", "O2", "1", "-1.5"), Reason.BAD_PRICE),
    ("price_zero", ("u1", "a", "2024-01-02", "purchase", "O2", "1", "0"), Reason.BAD_PRICE),
    ("exact_duplicate_of_base", BASE, Reason.DUPLICATE),
]


@pytest.mark.parametrize(
    ("row", "reason"), [(r, why) for _, r, why in REJECTED_ROWS], ids=[n for n, _, _ in REJECTED_ROWS]
)
def test_each_bad_row_is_rejected_with_its_reason_and_the_good_row_is_kept(row: Row, reason: Reason):
    result = run([BASE, row])

    assert result.report.rows_read == 2
    assert result.report.rows_accepted == 1
    assert nonzero(result.report.rejected) == {reason.value: 1}
    assert reasons(result) == [reason.value]
    assert result.rejected.column("row").to_pylist() == [2]
    assert result.events["user_id"].tolist() == ["u1"]
    assert result.report.reconciled


def test_report_lists_every_reason_even_when_its_count_is_zero():
    result = run([BASE])

    assert result.report.rejected == {r.value: 0 for r in Reason}
    assert result.rejected.num_rows == 0


@pytest.mark.parametrize("item", ["POSTAGE", "xPOST", "gift_0002_20", "xgift_0001_1", "DCG", "post"], ids=str)
def test_non_product_patterns_must_match_the_whole_item_id(item: str):
    result = run([("u1", item, "2024-01-02", "purchase", "O2", "1", "1.0")])

    assert result.report.rows_accepted == 1
    assert result.events["item_id"].tolist() == [item]


def test_order_ids_merely_containing_the_cancel_prefix_are_not_returns():
    result = run([("u1", "a", "2024-01-02", "purchase", "5C36", "1", "1.0")])

    assert result.report.rows_accepted == 1
    assert result.report.returns == ReturnsReport()


def test_without_a_cancel_prefix_c_orders_are_ordinary_purchases():
    result = run([("u1", "a", "2024-01-02", "purchase", "C9", "1", "1.0")], fmt=SourceFormat())

    assert result.report.rows_accepted == 1


def test_duplicate_keeps_the_first_row_and_rejects_every_later_copy():
    first = ("u1", "a", "2024-01-01 09:00:00", "view", None, None, None)
    other = ("u2", "a", "2024-01-01 09:00:00", "view", None, None, None)
    result = run([first, other, first, first])

    assert result.report.rows_accepted == 2
    assert nonzero(result.report.rejected) == {"duplicate": 2}
    assert result.rejected.column("row").to_pylist() == [3, 4]
    assert result.events["user_id"].tolist() == ["u1", "u2"]


def test_rows_differing_in_any_canonical_field_are_not_duplicates():
    rows = [
        BASE,
        ("u1", "a", "2024-01-01 09:00:00", "purchase", "O1", "5", "2.5"),  # price
        ("u1", "a", "2024-01-01 09:00:00", "purchase", "O1", "4", "2.0"),  # quantity
        ("u1", "a", "2024-01-01 09:00:00", "purchase", "O7", "5", "2.0"),  # order
        ("u1", "a", "2024-01-01 09:00:01", "purchase", "O1", "5", "2.0"),  # time
        ("u1", "a", "2024-01-01 09:00:00", "cart", "O1", "5", "2.0"),  # event type
    ]
    assert run(rows).report.rows_accepted == 6


def test_identical_rows_that_fail_an_earlier_check_keep_that_reason_not_duplicate():
    bad_price = ("u1", "a", "2024-01-02", "purchase", "O2", "1", "0")
    result = run([bad_price, bad_price])

    assert nonzero(result.report.rejected) == {"bad_price": 2}


# --- one reason per row, in the documented order --------------------------------------------------

PRIORITY: list[tuple[str, Row, Reason]] = [
    ("user_and_item_missing", (None, None, "2024-01-02", "purchase", "O2", "1", "1.0"), Reason.MISSING_USER),
    ("user_missing_bad_everything", (None, "POST", "junk", "gift", "C1", "x", "y"), Reason.MISSING_USER),
    ("item_missing_bad_timestamp", ("u1", None, "junk", "purchase", "O2", "1", "1.0"), Reason.MISSING_ITEM),
    ("unknown_event_bad_timestamp", ("u1", "a", "junk", "gift", "O2", "1", "1.0"), Reason.UNKNOWN_EVENT_TYPE),
    (
        "unknown_event_missing_item",
        ("u1", None, "2024-01-02", "page_view", "", "", ""),
        Reason.UNKNOWN_EVENT_TYPE,
    ),
    (
        "unknown_event_non_product",
        ("u1", "POST", "2024-01-02", "gift", "O2", "1", "1.0"),
        Reason.UNKNOWN_EVENT_TYPE,
    ),
    (
        "non_product_cancel",
        ("u1", "POST", "2024-01-02", "purchase", "C2", "-1", "1.0"),
        Reason.NON_PRODUCT_ITEM,
    ),
    ("cancel_bad_quantity", ("u1", "a", "2024-01-02", "purchase", "C2", "x", "1.0"), Reason.RETURN),
    ("cancel_bad_price", ("u1", "a", "2024-01-02", "purchase", "C2", "-1", "0"), Reason.RETURN),
    ("bad_quantity_bad_price", ("u1", "a", "2024-01-02", "purchase", "O2", "0", "-1"), Reason.BAD_QUANTITY),
]


@pytest.mark.parametrize(
    ("row", "reason"), [(r, why) for _, r, why in PRIORITY], ids=[n for n, _, _ in PRIORITY]
)
def test_a_row_with_several_faults_counts_once_under_the_first_reason_in_priority_order(
    row: Row, reason: Reason
):
    result = run([BASE, row])

    assert nonzero(result.report.rejected) == {reason.value: 1}
    assert sum(result.report.rejected.values()) == 1


def test_rows_read_always_equals_accepted_plus_every_rejection():
    rows = [BASE] + [r for _, r, _ in REJECTED_ROWS] + [r for _, r, _ in PRIORITY]
    result = run(rows)
    report = result.report

    assert report.rows_read == 1 + len(REJECTED_ROWS) + len(PRIORITY)
    assert report.rows_read == report.rows_accepted + sum(report.rejected.values())
    assert report.rows_anonymous == 0
    assert report.reconciled
    assert report.to_dict()["reconciled"] is True
    assert result.rejected.num_rows == sum(report.rejected.values())
    assert len(result.events) == report.rows_accepted
    assert None not in reasons(result)


def test_report_is_not_reconciled_when_counts_disagree():
    from features.validate import ValidationReport

    report = ValidationReport(rows_read=3, rows_accepted=1, rejected={"missing_user": 1})
    assert not report.reconciled


def test_report_reconciles_counting_anonymous_rows():
    from features.validate import ValidationReport

    report = ValidationReport(rows_read=3, rows_accepted=1, rejected={"missing_user": 1}, rows_anonymous=1)

    assert report.reconciled
    assert report.to_dict()["rows_anonymous"] == 1


# --- purchase lines of orders without a user id ---------------------------------------------------

#: A clean purchase line of order O2 without a customer id: kept as anonymous, not rejected.
ANONYMOUS: Row = (None, "b", "2024-01-02 10:00:00", "purchase", "O2", "3", "2.0")


def test_an_order_line_without_a_user_is_kept_as_anonymous_not_rejected_as_missing_user():
    result = run([BASE, ANONYMOUS])
    report = result.report

    assert report.rows_accepted == 1
    assert report.rows_anonymous == 1
    assert nonzero(report.rejected) == {}
    assert result.rejected.num_rows == 0
    assert report.reconciled
    assert report.to_dict()["rows_anonymous"] == 1
    assert result.events["user_id"].tolist() == ["u1"]
    anonymous = result.anonymous
    assert anonymous["item_id"].tolist() == ["b"]
    assert anonymous["order_id"].tolist() == ["O2"]
    assert anonymous["quantity"].tolist() == [3.0]
    assert anonymous["price"].tolist() == [2.0]
    assert anonymous["user_id"].isna().all()
    assert len(anonymous["user_id"].cat.categories) == 0


def test_anonymous_lines_have_the_events_columns_and_dtypes():
    columns = (*COLUMNS, "item_name", "category")
    rows: list[Row] = [(*BASE, "Mug", "Kitchen"), (*ANONYMOUS, "Plate", "Kitchen")]
    result = run(rows, SHOP, columns)

    assert list(result.anonymous.columns) == list(result.events.columns)
    for name in result.events.columns:
        assert type(result.anonymous[name].dtype) is type(result.events[name].dtype), name
        assert result.anonymous[name].dtype.kind == result.events[name].dtype.kind, name
    assert str(result.anonymous["timestamp"].dt.tz) == "UTC"
    assert result.anonymous["item_name"].tolist() == ["Plate"]


NOT_ANONYMOUS: list[tuple[str, Row]] = [
    ("view", (None, "b", "2024-01-02", "view", None, None, None)),
    ("cart", (None, "b", "2024-01-02", "cart", "O2", "1", None)),
    ("purchase_without_order", (None, "b", "2024-01-02", "purchase", None, "1", "2.0")),
    ("cancellation", (None, "b", "2024-01-02", "purchase", "C2", "-1", "2.0")),
    ("negative_quantity", (None, "b", "2024-01-02", "purchase", "O2", "-1", "2.0")),
    ("non_product", (None, "POST", "2024-01-02", "purchase", "O2", "1", "18.0")),
    ("bad_price", (None, "b", "2024-01-02", "purchase", "O2", "1", "0")),
    ("bad_quantity", (None, "b", "2024-01-02", "purchase", "O2", "x", "2.0")),
    ("bad_timestamp", (None, "b", "junk", "purchase", "O2", "1", "2.0")),
    ("missing_item", (None, None, "2024-01-02", "purchase", "O2", "1", "2.0")),
]


@pytest.mark.parametrize("row", [r for _, r in NOT_ANONYMOUS], ids=[n for n, _ in NOT_ANONYMOUS])
def test_rows_without_a_user_that_are_not_clean_order_lines_stay_missing_user(row: Row):
    result = run([BASE, row])

    assert nonzero(result.report.rejected) == {"missing_user": 1}
    assert result.report.rows_anonymous == 0
    assert result.anonymous.empty
    assert result.report.reconciled


def test_a_repeated_anonymous_line_is_kept_once_and_its_copy_is_missing_user():
    result = run([BASE, ANONYMOUS, ANONYMOUS])

    assert result.report.rows_anonymous == 1
    assert nonzero(result.report.rejected) == {"missing_user": 1}
    assert result.rejected.column("row").to_pylist() == [3]
    assert result.report.reconciled


def test_an_anonymous_line_is_no_duplicate_of_the_same_line_with_a_user():
    result = run([BASE, (None, *BASE[1:])])

    assert result.report.rows_accepted == 1
    assert result.report.rows_anonymous == 1
    assert nonzero(result.report.rejected) == {}


def test_anonymous_lines_are_not_netted_against_returns():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        (None, "a", "2024-01-01", "purchase", "O5", "3", "2.0"),
        ("u1", "a", "2024-01-02", "purchase", "C7", "-2", "2.0"),
        (None, "a", "2024-01-02", "purchase", "C8", "-3", "2.0"),  # no user: missing_user, not netted
    ]
    result = run(rows)

    assert result.events["quantity"].tolist() == [1.0]
    assert result.anonymous["quantity"].tolist() == [3.0]
    assert result.report.returns == ReturnsReport(
        rows=1, quantity=2.0, matched_quantity=2.0, unmatched_quantity=0.0, unmatched_rows=0
    )
    assert nonzero(result.report.rejected) == {"return": 1, "missing_user": 1}


# --- returns netting ------------------------------------------------------------------------------


def test_cancellation_invoice_is_rejected_as_return_and_netted_against_purchase():
    rows = [
        ("u1", "a", "2024-01-01 09:00:00", "purchase", "O1", "3", "2.0"),
        ("u1", "a", "2024-01-05 09:00:00", "purchase", "C7", "-2", "2.0"),
    ]
    result = run(rows)

    assert nonzero(result.report.rejected) == {"return": 1}
    assert result.events["quantity"].tolist() == [1.0]
    assert result.report.returns == ReturnsReport(
        rows=1, quantity=2.0, matched_quantity=2.0, unmatched_quantity=0.0, unmatched_rows=0
    )


def test_negative_purchase_quantity_is_a_return_netted_like_a_cancellation():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u1", "a", "2024-01-05", "purchase", "O9", "-2", "2.0"),
    ]
    result = run(rows, fmt=SourceFormat())

    assert nonzero(result.report.rejected) == {"return": 1}
    assert result.events["quantity"].tolist() == [1.0]
    assert result.report.returns.matched_quantity == 2.0


def test_return_larger_than_purchases_nets_them_to_zero_and_counts_the_unmatched_quantity():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u1", "a", "2024-01-05", "purchase", "C7", "-5", "2.0"),
    ]
    result = run(rows)

    assert result.report.rows_accepted == 1  # the netted-out purchase stays, with quantity 0
    assert result.events["quantity"].tolist() == [0.0]
    assert result.report.returns == ReturnsReport(
        rows=1,
        quantity=5.0,
        matched_quantity=3.0,
        unmatched_quantity=2.0,
        unmatched_rows=0,
        purchases_netted_out=1,
    )


def test_return_with_no_purchase_of_that_user_and_item_counts_an_unmatched_row():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u1", "a", "2024-01-02", "purchase", "C1", "-1", "2.0"),
        ("u2", "a", "2024-01-03", "purchase", "C2", "-4", "2.0"),  # u2 never bought a
        ("u1", "b", "2024-01-03", "purchase", "C3", "-2", "2.0"),  # u1 never bought b
    ]
    result = run(rows)

    assert result.events["quantity"].tolist() == [2.0]
    assert result.report.returns == ReturnsReport(
        rows=3, quantity=7.0, matched_quantity=1.0, unmatched_quantity=6.0, unmatched_rows=2
    )


def test_returns_are_counted_unmatched_when_no_purchase_matches_any_of_them():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u2", "b", "2024-01-02", "purchase", "C1", "-2", "2.0"),
    ]
    result = run(rows)

    assert result.events["quantity"].tolist() == [3.0]
    assert result.report.returns == ReturnsReport(
        rows=1, quantity=2.0, matched_quantity=0.0, unmatched_quantity=2.0, unmatched_rows=1
    )


def test_returns_net_the_latest_purchase_first_then_earlier_ones():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "2", "2.0"),
        ("u1", "a", "2024-01-03", "purchase", "O3", "3", "2.0"),
        ("u1", "a", "2024-01-02", "purchase", "O2", "1", "2.0"),
        ("u1", "a", "2024-01-04", "purchase", "C4", "-4", "2.0"),
    ]
    result = run(rows)

    quantity = dict(zip(result.events["order_id"], result.events["quantity"], strict=True))
    assert quantity == {"O1": 2.0, "O2": 0.0, "O3": 0.0}
    assert result.report.returns.purchases_netted_out == 2
    assert result.report.returns.matched_quantity == 4.0


def test_several_returns_of_one_pair_are_summed_before_netting():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "10", "2.0"),
        ("u1", "a", "2024-01-02", "purchase", "C1", "-3", "2.0"),
        ("u1", "a", "2024-01-03", "purchase", "C2", "-4", "2.0"),
    ]
    result = run(rows)

    assert result.events["quantity"].tolist() == [3.0]
    assert result.report.returns.rows == 2
    assert result.report.returns.quantity == 7.0


def test_returns_only_net_the_same_users_purchases_of_the_same_item():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u2", "a", "2024-01-01", "purchase", "O2", "3", "2.0"),
        ("u1", "b", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u1", "a", "2024-01-02", "purchase", "C1", "-2", "2.0"),
        ("u2", "b", "2024-01-02", "purchase", "C2", "-1", "2.0"),
    ]
    result = run(rows)

    got = {
        (u, i): q
        for u, i, q in zip(
            result.events["user_id"], result.events["item_id"], result.events["quantity"], strict=True
        )
    }
    assert got == {("u1", "a"): 1.0, ("u2", "a"): 3.0, ("u1", "b"): 3.0}
    assert result.report.returns.unmatched_rows == 1  # u2 never bought b


def test_returns_do_not_net_views_or_carts():
    rows = [
        ("u1", "a", "2024-01-01", "view", None, "3", None),
        ("u1", "a", "2024-01-01", "cart", None, "3", None),
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u1", "a", "2024-01-02", "purchase", "C1", "-2", "2.0"),
    ]
    result = run(rows)

    assert result.events["quantity"].tolist() == [3.0, 3.0, 1.0]


def test_rejected_purchases_are_not_netted_and_rejected_returns_are_not_counted():
    rows = [
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),
        ("u1", "a", "2024-01-01", "purchase", "O1", "3", "2.0"),  # duplicate: not netted
        (None, "a", "2024-01-02", "purchase", "C1", "-2", "2.0"),  # missing user: not a return
        ("u1", "a", "2024-01-02", "purchase", "C2", "-2", "2.0"),
    ]
    result = run(rows)

    assert result.events["quantity"].tolist() == [1.0]
    assert result.report.returns.rows == 1
    assert nonzero(result.report.rejected) == {"missing_user": 1, "return": 1, "duplicate": 1}


# --- quarantine ----------------------------------------------------------------------------------


def test_quarantine_csv_holds_every_rejected_row_with_its_row_number_and_reason(tmp_path: Path):
    source = tmp_path / "events.csv"
    source.write_text(
        "user_id,item_id,timestamp,event_type,price\n"
        "u1,a,2024-01-01 10:00:00,view,1.5\n"
        ",a,2024-01-01 10:00:00,view,1.5\n"
        "u2,b,2024-01-01 11:00:00,purchase,2\n"
        "u2,b,2024-01-01 12:00:00,purchase,-1\n"
        "u1,a,2024-01-01 10:00:00,view,1.5\n"
        "u3,c,not a time,wishlist,1\n"
    )
    quarantine = tmp_path / "out" / "nested" / "quarantine.csv"

    result = load_events(source, SourceFormat(), quarantine=quarantine)

    with quarantine.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["reason"]) for r in rows] == [
        ("2", "missing_user"),
        ("4", "bad_price"),
        ("5", "duplicate"),
        ("6", "unknown_event_type"),
    ]
    assert list(rows[0]) == ["row", "user_id", "item_id", "timestamp", "event_type", "price", "reason"]
    assert rows[1] == {
        "row": "4",
        "user_id": "u2",
        "item_id": "b",
        "timestamp": "2024-01-01 12:00:00",
        "event_type": "purchase",
        "price": "-1",
        "reason": "bad_price",
    }
    assert rows[0]["user_id"] == ""
    assert rows[3]["timestamp"] == "not a time"
    assert len(rows) == sum(result.report.rejected.values())


def test_quarantine_of_a_clean_file_has_only_the_header(tmp_path: Path):
    result = run([BASE])
    path = result.write_quarantine(tmp_path / "q.csv")

    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].replace('"', "").split(",") == ["row", *COLUMNS, "reason"]


def test_quarantine_keeps_raw_values_before_normalisation():
    fmt = SourceFormat(event_type="purchase", float_id_columns=("user_id",))
    rows: list[Row] = [
        ("17850.0", "a", "2024-01-01", "O1", "1", "1"),
        ("17850.0", "a", "2024-01-01", "O1", "1", "1"),
    ]
    result = run(rows, fmt, ("user_id", "item_id", "timestamp", "order_id", "quantity", "price"))

    assert result.rejected.column("user_id").to_pylist() == ["17850.0"]
    assert result.events["user_id"].tolist() == ["17850"]


# --- event types ---------------------------------------------------------------------------------


def test_shop_event_names_map_to_view_cart_purchase_case_insensitively():
    fmt = SourceFormat(
        event_type_values={"PageView": "view", "addtocart": "cart", " Transaction ": "purchase"}
    )
    rows: list[Row] = [
        ("u1", "a", "2024-01-01 10:00", "pageview"),
        ("u1", "a", "2024-01-01 10:01", "ADDTOCART"),
        ("u1", "a", "2024-01-01 10:02", "Transaction"),
        ("u1", "a", "2024-01-01 10:03", "Purchase"),  # the canonical names always work
        ("u1", "a", "2024-01-01 10:04", " VIEW "),
        ("u1", "a", "2024-01-01 10:05", "refund"),
    ]
    result = run(rows, fmt, ("user_id", "item_id", "timestamp", "event_type"))

    assert result.events["event_type"].tolist() == ["view", "cart", "purchase", "purchase", "view"]
    assert nonzero(result.report.rejected) == {"unknown_event_type": 1}
    assert result.rejected.column("row").to_pylist() == [6]


def test_constant_event_type_applies_to_every_row_when_the_file_has_no_event_column():
    rows: list[Row] = [("u1", "a", "2024-01-01"), ("u2", "b", "2024-01-02")]
    result = run(rows, SourceFormat(event_type="cart"), ("user_id", "item_id", "timestamp"))

    assert result.events["event_type"].tolist() == ["cart", "cart"]
    assert list(result.events["event_type"].cat.categories) == ["view", "cart", "purchase", "dismiss"]


def test_constant_event_type_fills_only_rows_whose_event_type_is_blank():
    rows: list[Row] = [
        ("u1", "a", "2024-01-01", "view"),
        ("u1", "b", "2024-01-02", ""),
        ("u1", "c", "2024-01-03", None),
        ("u1", "d", "2024-01-04", "gift"),
    ]
    result = run(rows, SourceFormat(event_type="purchase"), ("user_id", "item_id", "timestamp", "event_type"))

    assert result.events["event_type"].tolist() == ["view", "purchase", "purchase"]
    assert nonzero(result.report.rejected) == {"unknown_event_type": 1}


# --- value normalisation -------------------------------------------------------------------------


def test_float_ids_are_normalised_in_float_id_columns_only():
    fmt = SourceFormat(event_type="view", float_id_columns=("user_id",))
    rows: list[Row] = [
        ("17850.0", "85123.0", "2024-01-01"),
        ("17850", "85123", "2024-01-02"),
        ("17850.00", "x", "2024-01-03"),
        ("17850.5", "x", "2024-01-04"),
        ("-3.0", "x", "2024-01-05"),
    ]
    result = run(rows, fmt, ("user_id", "item_id", "timestamp"))

    assert result.events["user_id"].tolist() == ["17850", "17850", "17850", "17850.5", "-3"]
    assert result.events["item_id"].tolist() == ["85123.0", "85123", "x", "x", "x"]
    assert sorted(result.events["user_id"].cat.categories) == ["-3", "17850", "17850.5"]


def test_without_float_id_columns_17850_0_and_17850_are_different_users():
    rows: list[Row] = [("17850.0", "a", "2024-01-01"), ("17850", "a", "2024-01-02")]
    result = run(rows, SourceFormat(event_type="view"), ("user_id", "item_id", "timestamp"))

    assert result.events["user_id"].tolist() == ["17850.0", "17850"]


def test_surrounding_whitespace_is_trimmed_and_blank_strings_are_missing():
    rows: list[Row] = [
        ("  u1 ", " a", "2024-01-01", "purchase", "  ", "  ", " "),
        ("u1", "a ", "2024-01-02", "purchase", "O1", "2", "3"),
    ]
    result = run(rows, SourceFormat())

    events = result.events
    assert events["user_id"].tolist() == ["u1", "u1"]
    assert events["item_id"].tolist() == ["a", "a"]
    assert events["order_id"].isna().tolist() == [True, False]
    assert events["quantity"].tolist() == [1.0, 2.0]
    assert np.isnan(events["price"].iloc[0])
    assert events["price"].iloc[1] == 3.0
    assert result.report.rows_accepted == 2


def test_missing_quantity_column_defaults_every_quantity_to_one():
    rows: list[Row] = [("u1", "a", "2024-01-01", "purchase"), ("u2", "b", "2024-01-02", "view")]
    result = run(rows, SourceFormat(), ("user_id", "item_id", "timestamp", "event_type"))

    assert result.events["quantity"].tolist() == [1.0, 1.0]
    assert result.events["quantity"].dtype == np.float32
    assert result.events["price"].isna().all()
    assert result.events["order_id"].isna().all()


def test_fractional_quantities_and_prices_are_kept():
    rows: list[Row] = [("u1", "a", "2024-01-01", "purchase", "O1", "2.5", "0.01")]
    result = run(rows, SourceFormat())

    assert result.events["quantity"].tolist() == [2.5]
    assert result.events["price"].tolist() == [0.01]


def test_events_frame_has_the_documented_columns_and_dtypes():
    columns = (*COLUMNS, "item_name", "category")
    rows: list[Row] = [("u1", "a", "2024-01-01", "purchase", "O1", "1", "2", "Mug", "Kitchen")]
    events = run(rows, SourceFormat(), columns).events

    assert list(events.columns) == [
        "user_id", "item_id", "event_type", "timestamp", "order_id", "quantity", "price", "item_name",
        "category",
    ]  # fmt: skip
    for name in ("user_id", "item_id", "event_type", "order_id", "item_name", "category"):
        assert isinstance(events[name].dtype, pd.CategoricalDtype), name
    assert str(events["timestamp"].dt.tz) == "UTC"
    assert events["price"].dtype == np.float64
    assert events["item_name"].tolist() == ["Mug"]


def test_naive_timestamps_are_read_in_the_shop_timezone_and_stored_as_utc():
    rows: list[Row] = [
        ("u1", "a", "2024-07-01 12:00:00"),  # BST: UTC+1
        ("u1", "b", "2024-01-15 12:00:00"),  # GMT: UTC+0
    ]
    fmt = SourceFormat(event_type="view", timezone="Europe/London")
    result = run(rows, fmt, ("user_id", "item_id", "timestamp"))

    assert result.events["timestamp"].tolist() == [
        pd.Timestamp("2024-07-01 11:00:00", tz="UTC"),
        pd.Timestamp("2024-01-15 12:00:00", tz="UTC"),
    ]


def test_timestamps_with_an_offset_are_converted_to_utc():
    rows: list[Row] = [("u1", "a", "2024-07-01T12:00:00+02:00"), ("u1", "b", "2024-07-01T12:00:00Z")]
    result = run(rows, SourceFormat(event_type="view"), ("user_id", "item_id", "timestamp"))

    assert result.events["timestamp"].tolist() == [
        pd.Timestamp("2024-07-01 10:00:00", tz="UTC"),
        pd.Timestamp("2024-07-01 12:00:00", tz="UTC"),
    ]


def test_naive_timestamps_use_the_shop_timezone_even_when_other_rows_carry_an_offset():
    rows: list[Row] = [("u1", "a", "2024-07-01 12:00:00"), ("u1", "b", "2024-07-01T12:00:00+02:00")]
    fmt = SourceFormat(event_type="view", timezone="Europe/London")
    result = run(rows, fmt, ("user_id", "item_id", "timestamp"))

    assert result.events["timestamp"].tolist() == [
        pd.Timestamp("2024-07-01 11:00:00", tz="UTC"),
        pd.Timestamp("2024-07-01 10:00:00", tz="UTC"),
    ]


def test_explicit_timestamp_format_parses_day_first_and_rejects_other_layouts():
    rows: list[Row] = [("u1", "a", "01/12/2010 08:26"), ("u1", "b", "2010-12-01 08:26")]
    fmt = SourceFormat(event_type="view", timestamp_format="%d/%m/%Y %H:%M")
    result = run(rows, fmt, ("user_id", "item_id", "timestamp"))

    assert result.events["timestamp"].tolist() == [pd.Timestamp("2010-12-01 08:26", tz="UTC")]
    assert nonzero(result.report.rejected) == {"bad_timestamp": 1}


def test_iso_and_other_common_layouts_are_both_parsed_without_a_format():
    rows: list[Row] = [("u1", "a", "2010-12-01 08:26:00"), ("u1", "b", "Dec 1 2010 09:30")]
    result = run(rows, SourceFormat(event_type="view"), ("user_id", "item_id", "timestamp"))

    assert result.events["timestamp"].tolist() == [
        pd.Timestamp("2010-12-01 08:26", tz="UTC"),
        pd.Timestamp("2010-12-01 09:30", tz="UTC"),
    ]


def test_load_events_reads_a_csv_and_reconciles(tmp_path: Path):
    path = tmp_path / "events.csv"
    path.write_text(
        "CustomerID,StockCode,InvoiceDate,InvoiceNo,Quantity,UnitPrice\n"
        "17850.0,A,2010-12-01 08:26:00,536365,6,2.55\n"
        "17850.0,A,2010-12-02 08:26:00,C536366,-2,2.55\n"
        ",B,2010-12-01 08:26:00,536367,1,1.00\n"  # stock code B (bad debt) is not a product
        ",A,2010-12-01 08:40:00,536369,3,2.55\n"  # no customer id: an anonymous order line
        "13047.0,POST,2010-12-01 08:26:00,536368,1,18.00\n"
    )
    from features.io import resolve_format

    result = load_events(path, resolve_format("online-retail"))

    assert result.report.rows_read == 5
    assert nonzero(result.report.rejected) == {"return": 1, "missing_user": 1, "non_product_item": 1}
    assert result.report.rows_anonymous == 1
    assert result.report.reconciled
    assert result.anonymous["item_id"].tolist() == ["A"]
    assert result.anonymous["order_id"].tolist() == ["536369"]
    assert result.anonymous["quantity"].tolist() == [3.0]
    assert result.events["user_id"].tolist() == ["17850"]
    assert result.events["quantity"].tolist() == [4.0]
    assert result.events["event_type"].tolist() == ["purchase"]
