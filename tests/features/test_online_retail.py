"""Integration: the real UCI Online Retail export reconciles row for row under its preset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from features.io import ONLINE_RETAIL_NON_PRODUCTS, resolve_format
from features.schema import Reason
from features.validate import ValidationResult, load_events

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
ROWS = 541_909

pytestmark = pytest.mark.skipif(not DATA.is_file(), reason=f"Online Retail data not found at {DATA}")


@pytest.fixture(scope="module")
def retail() -> ValidationResult:
    return load_events(DATA, resolve_format("online-retail"))


def test_every_row_is_read_and_reconciles(retail: ValidationResult):
    report = retail.report

    assert report.rows_read == ROWS
    assert report.reconciled
    assert report.rows_accepted + report.rows_anonymous + sum(report.rejected.values()) == ROWS
    assert len(retail.events) == report.rows_accepted
    assert len(retail.anonymous) == report.rows_anonymous
    assert retail.rejected.num_rows == sum(report.rejected.values())


def test_every_rejected_row_has_exactly_one_known_reason_and_a_unique_row_number(retail: ValidationResult):
    reasons = retail.rejected.column("reason")
    rows = retail.rejected.column("row").to_numpy()

    assert reasons.null_count == 0
    assert set(pc.unique(reasons).to_pylist()) <= {r.value for r in Reason}
    counts = pd.Series(reasons.to_pylist()).value_counts().to_dict()
    assert counts == {k: v for k, v in retail.report.rejected.items() if v}
    assert len(np.unique(rows)) == len(rows)
    assert rows.min() >= 1 and rows.max() <= ROWS


def test_missing_customer_ids_match_the_published_count(retail: ValidationResult):
    assert retail.report.rows_anonymous + retail.report.rejected["missing_user"] == 135_080


def test_invoice_lines_without_a_customer_id_are_kept_as_anonymous_orders(retail: ValidationResult):
    anonymous = retail.anonymous

    assert retail.report.rows_anonymous == 131_354
    assert anonymous["order_id"].nunique() == 1_371
    assert anonymous["user_id"].isna().all()
    assert (anonymous["quantity"] > 0).all() and (anonymous["price"] > 0).all()
    assert not anonymous["order_id"].astype(str).str.startswith("C").any()
    assert not set(anonymous["order_id"].cat.categories) & set(retail.events["order_id"].cat.categories)


def test_rows_without_a_customer_id_that_are_not_clean_invoice_lines_stay_missing_user(
    retail: ValidationResult,
):
    # 1,489 cancellation lines, 1,128 zero-price lines, 1,075 non-products and 34 repeated lines
    assert retail.report.rejected["missing_user"] == 3_726


def test_rejection_counts_are_plausible(retail: ValidationResult):
    rejected = retail.report.rejected

    assert rejected["missing_item"] == 0
    assert rejected["bad_timestamp"] == 0
    assert rejected["unknown_event_type"] == 0
    assert 0 < rejected["non_product_item"] < 5_000
    assert 5_000 < rejected["return"] <= 9_288  # cancellation rows with a customer id
    assert 0 < rejected["bad_price"] < 100
    assert 4_000 < rejected["duplicate"] <= 5_268  # the published duplicate count
    assert rejected["bad_quantity"] == 0  # every non-positive quantity is a cancellation


def test_returns_are_netted_and_reported(retail: ValidationResult):
    returns = retail.report.returns

    assert returns.rows == retail.report.rejected["return"]
    assert returns.quantity > 0
    assert 0 < returns.matched_quantity <= returns.quantity
    assert returns.matched_quantity + returns.unmatched_quantity == pytest.approx(returns.quantity)
    assert 0 < returns.unmatched_rows < returns.rows
    assert returns.purchases_netted_out > 0
    assert (retail.events["quantity"] == 0).sum() == returns.purchases_netted_out


def test_accepted_events_are_clean_purchases(retail: ValidationResult):
    events = retail.events

    assert set(events["event_type"].unique()) == {"purchase"}
    assert (events["quantity"] >= 0).all()
    assert (events["price"] > 0).all()
    assert not events["order_id"].astype(str).str.startswith("C").any()
    non_product = "|".join(f"(?:{p})" for p in ONLINE_RETAIL_NON_PRODUCTS)
    assert not events["item_id"].astype(str).str.fullmatch(non_product).any()


def test_customer_ids_are_normalised_from_floats(retail: ValidationResult):
    users = retail.events["user_id"].cat.categories.astype(str)

    assert users.str.fullmatch(r"\d{5}").all()
    assert "17850" in set(users)


def test_sizes_and_dates_are_plausible(retail: ValidationResult):
    events = retail.events

    assert 4_300 <= events["user_id"].nunique() <= 4_372
    assert 3_500 <= events["item_id"].nunique() <= 4_070
    assert 18_000 <= events["order_id"].nunique() <= 22_064
    assert events["timestamp"].min() == pd.Timestamp("2010-12-01 08:26:00", tz="UTC")
    assert events["timestamp"].max() == pd.Timestamp("2011-12-09 12:50:00", tz="UTC")
