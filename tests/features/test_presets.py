"""Platform presets: Shopify and WooCommerce orders CSVs and GA4 exports, read as they come."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.identity import hash_id
from features.io import resolve_format
from features.validate import load_events

# Shopify admin > Orders > Export, as documented: one row per line item; order fields (status,
# totals, addresses) on the first line of an order only. Column subset in Shopify's order.
SHOPIFY_HEADER = (
    "Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,Currency,"
    "Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,Created at,"
    "Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,Lineitem sku,"
    "Lineitem requires shipping,Lineitem taxable,Lineitem fulfillment status,Billing Name,Cancelled at,"
    "Id,Vendor"
)
SHOPIFY_ROWS = [
    "#1001,alice@example.com,paid,2024-03-01 10:00:00 -0500,fulfilled,,yes,USD,25.50,5.00,0.00,30.50,,0.00,"
    "Standard,2024-03-01 10:00:00 -0500,2,Mug,10.00,12.00,MUG-1,true,true,fulfilled,Alice A,,5001,Acme",
    "#1001,alice@example.com,,,,,,,,,,,,,,,1,Coaster,5.50,,CST-1,true,true,fulfilled,,,,Acme",
    "#1002, Bob@Example.COM ,paid,2024-03-02 09:30:00 +0100,fulfilled,,no,USD,10.00,0.00,0.00,10.00,,0.00,"
    "Standard,2024-03-02 09:30:00 +0100,1,Mug,10.00,,MUG-1,true,true,fulfilled,Bob B,,5002,Acme",
    "#1003,alice@example.com,refunded,2024-03-03 12:00:00 -0500,,,yes,USD,8.00,0.00,0.00,8.00,,0.00,"
    "Standard,2024-03-03 12:00:00 -0500,1,Teapot,8.00,,TEA-1,true,true,,Alice A,,5003,Acme",
    "#1004,carol@example.com,pending,,,,no,USD,5.50,0.00,0.00,5.50,,0.00,Standard,"
    "2024-03-04 08:00:00 +0000,1,Coaster,5.50,,CST-1,true,true,,Carol C,2024-03-04 09:00:00 +0000,5004,Acme",
    "#1005,dave@example.com,paid,2024-03-05 15:00:00 +0000,,,no,USD,3.00,0.00,0.00,3.00,,0.00,Standard,"
    "2024-03-05 15:00:00 +0000,1,Gift wrap,3.00,,,false,true,,Dave D,,5005,Acme",
]

# WooCommerce Customer/Order/Coupon Export, "Default - One Row per Item": item_total is the line's
# total after discounts; guests have customer_id 0, so the e-mail is the customer.
WOO_HEADER = (
    "order_id,order_number,order_date,status,shipping_total,order_total,customer_id,billing_first_name,"
    "billing_email,item_id,item_product_id,item_name,item_sku,item_quantity,item_subtotal,item_total"
)
WOO_ROWS = [
    "11,101,2024-05-01 10:00:00,completed,4.00,44.00,7,Ann,ann@example.com,1,50,Hoodie,HD-1,2,40.00,40.00",
    "11,101,,,,,7,,ann@example.com,2,51,Beanie,BN-1,1,,0.00",
    "12,102,2024-05-02 11:00:00,processing,0.00,18.00,0,Ben,ben@example.com,3,51,Beanie,BN-1,2,20.00,18.00",
    "13,103,2024-05-03 12:00:00,cancelled,0.00,20.00,7,Ann,ann@example.com,4,50,Hoodie,HD-1,1,20.00,20.00",
    "14,104,2024-05-04 13:00:00,on-hold,0.00,9.00,0,Cy,cy@example.com,5,51,Beanie,BN-1,1,10.00,9.00",
]


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_shopify_preset_reads_lines_hashes_emails_and_sets_aside_cancelled_orders(tmp_path: Path) -> None:
    path = _write(tmp_path / "orders_export.csv", SHOPIFY_HEADER, SHOPIFY_ROWS)
    quarantine = tmp_path / "quarantine.csv"
    result = load_events(path, resolve_format("shopify"), quarantine=quarantine)
    report = result.report
    assert report.reconciled and report.rows_read == 6
    assert report.rows_accepted == 3
    assert report.rejected["cancelled"] == 2  # #1003 refunded, #1004 cancelled while pending
    assert report.rejected["missing_item"] == 1  # gift wrap without a SKU
    events = result.events
    alice, bob = hash_id("alice@example.com"), hash_id("bob@example.com")
    assert set(events["user_id"].astype(str)) == {alice, bob}
    first = events[events["order_id"] == "#1001"].sort_values("item_id")
    assert list(first["item_id"].astype(str)) == ["CST-1", "MUG-1"]
    assert list(first["user_id"].astype(str)) == [alice, alice]  # order fields carried to line 2
    assert (first["quantity"] * first["price"]).sum() == pytest.approx(25.50)
    assert first["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 15:00:00", tz="UTC")
    for text in (events.astype(str).to_csv(), quarantine.read_text()):
        assert "@" not in text, "a raw e-mail address was kept"


def test_hashed_ids_follow_the_salt(tmp_path: Path) -> None:
    path = _write(tmp_path / "orders_export.csv", SHOPIFY_HEADER, SHOPIFY_ROWS[:1])
    plain = load_events(path, resolve_format("shopify")).events["user_id"].astype(str).iloc[0]
    salted = (
        load_events(path, resolve_format("shopify", id_salt="s3cret")).events["user_id"].astype(str).iloc[0]
    )
    assert plain == hash_id("alice@example.com") and salted == hash_id("alice@example.com", "s3cret")
    assert plain != salted and len(plain) == 24


def test_woocommerce_preset_takes_unit_prices_from_line_totals_and_drops_cancelled_orders(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "orders.csv", WOO_HEADER, WOO_ROWS)
    result = load_events(path, resolve_format("woocommerce"))
    report = result.report
    assert report.reconciled and report.rows_read == 5
    assert report.rows_accepted == 3
    assert report.rejected["cancelled"] == 1
    assert report.rejected["bad_price"] == 1  # a free beanie: a 0.00 line
    events = result.events.set_index("order_id")
    assert events.loc["101", "price"] == pytest.approx(20.0)  # 40.00 for 2
    assert events.loc["102", "price"] == pytest.approx(9.0)  # 18.00 for 2, after a discount
    assert events.loc["101", "user_id"] == hash_id("ann@example.com")
    assert events.loc["104", "user_id"] == hash_id("cy@example.com")  # a guest is still a customer


GA4_EVENTS = [
    {
        "event_name": "session_start",
        "event_timestamp": 1714557600000000,
        "user_pseudo_id": "111.1",
        "items": [],
    },
    {
        "event_name": "view_item",
        "event_timestamp": 1714557601000000,
        "user_pseudo_id": "111.1",
        "event_params": [{"key": "page_location", "value": {"string_value": "https://shop/p/1"}}],
        "items": [{"item_id": "SKU1", "item_name": "Mug", "item_category": "Kitchen", "price": 10.0}],
    },
    {
        "event_name": "add_to_cart",
        "event_timestamp": 1714557602000000,
        "user_pseudo_id": "111.1",
        "items": [{"item_id": "SKU1", "item_name": "Mug", "price": 10.0, "quantity": 2}],
    },
    {
        "event_name": "purchase",
        "event_timestamp": 1714557603000000,
        "user_pseudo_id": "111.1",
        "user_id": "cust-9",
        "ecommerce": {"transaction_id": "T1", "purchase_revenue": 25.5},
        "items": [
            {"item_id": "SKU1", "item_name": "Mug", "price": 10.0, "quantity": 2},
            {"item_id": "SKU2", "item_name": "Coaster", "price": 5.5, "quantity": 1},
        ],
    },
    {"event_name": "page_view", "event_timestamp": 1714557604000000, "user_pseudo_id": "222.2"},
]


def _check_ga4(path: Path) -> None:
    result = load_events(path, resolve_format("ga4"))
    report = result.report
    assert report.file_rows == 5 and report.rows_read == 6  # the purchase's two items are two rows
    assert report.reconciled and report.rows_accepted == 4
    assert report.rejected["unknown_event_type"] == 2  # session_start, page_view
    events = result.events.sort_values("timestamp")
    assert list(events["event_type"].astype(str)) == ["view", "cart", "purchase", "purchase"]
    assert list(events["user_id"].astype(str)) == ["111.1", "111.1", "cust-9", "cust-9"]
    purchase = events[events["event_type"] == "purchase"]
    assert set(purchase["order_id"].astype(str)) == {"T1"}
    assert (purchase["quantity"] * purchase["price"]).sum() == pytest.approx(25.5)
    assert events["timestamp"].iloc[0] == pd.Timestamp("2024-05-01 10:00:01", tz="UTC")
    assert events["category"].astype(str).iloc[0] == "Kitchen"


def test_ga4_ndjson_export_becomes_one_row_per_item_and_counts_every_event(tmp_path: Path) -> None:
    path = tmp_path / "events_20240501.json"
    path.write_text("\n".join(json.dumps(e) for e in GA4_EVENTS) + "\n")
    _check_ga4(path)


def test_ga4_ndjson_with_integers_as_strings_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "events_20240501.json"
    as_strings = [{**e, "event_timestamp": str(e["event_timestamp"])} for e in copy.deepcopy(GA4_EVENTS)]
    for event in as_strings:
        for item in event.get("items", []):
            if "quantity" in item:
                item["quantity"] = str(item["quantity"])
    path.write_text("\n".join(json.dumps(e) for e in as_strings) + "\n")
    _check_ga4(path)


def test_ga4_ndjson_with_timestamps_as_strings_and_quantities_as_numbers_reads_the_same(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events_20240501.json"
    mixed = [{**e, "event_timestamp": str(e["event_timestamp"])} for e in copy.deepcopy(GA4_EVENTS)]
    path.write_text("\n".join(json.dumps(e) for e in mixed) + "\n")
    _check_ga4(path)


def test_ga4_parquet_export_reads_the_same(tmp_path: Path) -> None:
    item = pa.struct(
        [
            ("item_id", pa.string()),
            ("item_name", pa.string()),
            ("item_category", pa.string()),
            ("price", pa.float64()),
            ("quantity", pa.int64()),
        ]
    )
    schema = pa.schema(
        [
            ("event_name", pa.string()),
            ("event_timestamp", pa.int64()),
            ("user_id", pa.string()),
            ("user_pseudo_id", pa.string()),
            ("ecommerce", pa.struct([("transaction_id", pa.string()), ("purchase_revenue", pa.float64())])),
            ("items", pa.list_(item)),
        ]
    )
    rows = [{k: v for k, v in e.items() if k != "event_params"} for e in GA4_EVENTS]
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    _check_ga4(path)


def test_ga4_file_without_items_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table({"event_name": ["page_view"], "event_timestamp": np.array([1], dtype=np.int64)}), path
    )
    with pytest.raises(Exception, match="GA4 column 'items'"):
        load_events(path, resolve_format("ga4"))
