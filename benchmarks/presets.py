"""Read Online Retail's purchases as a Shopify, a WooCommerce and a GA4 export: same answer, what cost.

Usage: ``.venv/bin/python benchmarks/presets.py [--events ../shared/data/online_retail/
online_retail.csv.gz] [--out benchmarks/results/presets.json]``.

The real invoice lines (purchases of products: no ``C`` invoices, no fee codes) are written out in
each platform's layout: Shopify (one row per line, order fields on the first line only, the
customer as an e-mail), WooCommerce (line totals, not unit prices) and GA4 (one ``purchase`` event
per invoice with its lines as ``items``; NDJSON and Parquet). Each file is read with its preset
and compared with the same lines read as a plain CSV: accepted rows, anonymous rows, orders,
customers and revenue must agree exactly (ids are hashes, so customers are compared by count).
Read time is reported as a ratio to the plain CSV in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/training.py would shadow the training package

from features.io import ONLINE_RETAIL_NON_PRODUCTS, resolve_format  # noqa: E402
from features.validate import ValidationResult, load_events  # noqa: E402

DEFAULT_EVENTS = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"


def purchase_lines(path: Path) -> pd.DataFrame:
    """Return the file's purchase lines of products, each invoice's lines together."""
    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    fees = raw["StockCode"].str.fullmatch("|".join(f"(?:{p})" for p in ONLINE_RETAIL_NON_PRODUCTS))
    keep = ~raw["InvoiceNo"].str.startswith("C") & ~fees & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)
    lines = raw[keep].sort_values("InvoiceNo", kind="stable").reset_index(drop=True)
    lines["customer"] = lines["CustomerID"].str.replace(r"\.0$", "", regex=True)
    when = pd.to_datetime(lines["InvoiceDate"], format="ISO8601")
    lines["when"] = when.groupby(lines["InvoiceNo"]).transform("first")  # an order has one time
    return lines


def write_plain(lines: pd.DataFrame, path: Path) -> Path:
    """Write the lines as the event contract's own CSV."""
    pd.DataFrame(
        {
            "user_id": lines["customer"],
            "item_id": lines["StockCode"],
            "timestamp": lines["when"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "event_type": "purchase",
            "order_id": lines["InvoiceNo"],
            "quantity": lines["Quantity"],
            "price": lines["UnitPrice"],
        }
    ).to_csv(path, index=False)
    return path


def _first_line_only(lines: pd.DataFrame, values: pd.Series) -> pd.Series:
    """Blank a per-order value on every line of an order but its first."""
    return values.where(~lines["InvoiceNo"].duplicated(), "")


def write_shopify(lines: pd.DataFrame, path: Path) -> Path:
    """Write the lines as Shopify's orders export."""
    email = ("customer" + lines["customer"] + "@example.com").fillna("")
    created = lines["when"].dt.strftime("%Y-%m-%d %H:%M:%S +0000")
    pd.DataFrame(
        {
            "Name": "#" + lines["InvoiceNo"],
            "Email": email,
            "Financial Status": _first_line_only(lines, pd.Series("paid", index=lines.index)),
            "Created at": _first_line_only(lines, created),
            "Lineitem quantity": lines["Quantity"],
            "Lineitem name": lines["Description"],
            "Lineitem price": lines["UnitPrice"],
            "Lineitem sku": lines["StockCode"],
            "Billing Name": _first_line_only(lines, pd.Series("A Customer", index=lines.index)),
            "Cancelled at": "",
        }
    ).to_csv(path, index=False)
    return path


def write_woocommerce(lines: pd.DataFrame, path: Path) -> Path:
    """Write the lines as WooCommerce's one-row-per-item orders export."""
    pd.DataFrame(
        {
            "order_id": lines["InvoiceNo"],
            "order_number": lines["InvoiceNo"],
            "order_date": _first_line_only(lines, lines["when"].dt.strftime("%Y-%m-%d %H:%M:%S")),
            "status": _first_line_only(lines, pd.Series("completed", index=lines.index)),
            "billing_email": ("customer" + lines["customer"] + "@example.com").fillna(""),
            "item_name": lines["Description"],
            "item_sku": lines["StockCode"],
            "item_quantity": lines["Quantity"],
            "item_total": (lines["Quantity"] * lines["UnitPrice"]).round(4),
        }
    ).to_csv(path, index=False)
    return path


def ga4_table(lines: pd.DataFrame) -> pa.Table:
    """Return one GA4 ``purchase`` event per invoice, its lines as ``items``."""
    first = ~lines["InvoiceNo"].duplicated()
    invoices = lines[first]
    offsets = np.r_[np.flatnonzero(first.to_numpy()), len(lines)].astype(np.int32)
    items = pa.StructArray.from_arrays(
        [
            pa.array(lines["StockCode"]),
            pa.array(lines["Description"].fillna("")),
            pa.array(lines["UnitPrice"].astype(float)),
            pa.array(lines["Quantity"].astype(np.int64)),
        ],
        names=["item_id", "item_name", "price", "quantity"],
    )
    return pa.table(
        {
            "event_name": pa.array(["purchase"] * len(invoices)),
            "event_timestamp": pa.array(invoices["when"].astype("int64").to_numpy() // 1000),
            "user_pseudo_id": pa.array(invoices["customer"]),
            "ecommerce": pa.StructArray.from_arrays(
                [pa.array(invoices["InvoiceNo"])], names=["transaction_id"]
            ),
            "items": pa.ListArray.from_arrays(pa.array(offsets), items),
        }
    )


def write_ga4_ndjson(table: pa.Table, path: Path) -> Path:
    """Write GA4 events as NDJSON."""
    with path.open("w") as fh:
        for row in table.to_pylist():
            fh.write(json.dumps(row) + "\n")
    return path


def summary(result: ValidationResult) -> dict[str, Any]:
    """Return what must agree between layouts."""
    events, anonymous = result.events, result.anonymous
    return {
        "rows_accepted": result.report.rows_accepted,
        "rows_anonymous": result.report.rows_anonymous,
        "reconciled": result.report.reconciled,
        "orders": int(events["order_id"].nunique()) + int(anonymous["order_id"].nunique()),
        "customers": int(events["user_id"].nunique()),
        "revenue": round(
            float(
                (events["quantity"] * events["price"]).sum()
                + (anonymous["quantity"] * anonymous["price"]).sum()
            ),
            2,
        ),
    }


def main() -> None:
    """Write the layouts, read each with its preset, compare and time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/presets.json")
    args = parser.parse_args()
    lines = purchase_lines(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ga4 = ga4_table(lines)
        pq.write_table(ga4, folder / "events.parquet")
        files = {
            "plain csv": (write_plain(lines, folder / "plain.csv"), resolve_format()),
            "shopify": (write_shopify(lines, folder / "orders_export.csv"), resolve_format("shopify")),
            "woocommerce": (write_woocommerce(lines, folder / "orders.csv"), resolve_format("woocommerce")),
            "ga4 ndjson": (write_ga4_ndjson(ga4, folder / "events.json"), resolve_format("ga4")),
            "ga4 parquet": (folder / "events.parquet", resolve_format("ga4")),
        }
        rows: dict[str, dict[str, Any]] = {}
        for name, (path, fmt) in files.items():
            best = float("inf")
            for _ in range(2):
                start = time.perf_counter()
                result = load_events(path, fmt)
                best = min(best, time.perf_counter() - start)
            rows[name] = {**summary(result), "seconds": round(best, 3), "file_rows": result.report.file_rows}
    base = rows["plain csv"]
    print(f"{len(lines):,} purchase lines of Online Retail in each layout")
    print(
        f"{'layout':<12} {'accepted':>9} {'anonymous':>9} {'orders':>7} {'customers':>9} {'revenue':>13} "
        f"{'same':>5} {'read s':>7} {'x plain':>7}"
    )
    for name, row in rows.items():
        keys = ("rows_accepted", "rows_anonymous", "orders", "customers", "revenue")
        row["same_as_plain"] = all(row[k] == base[k] for k in keys)
        row["time_ratio"] = round(row["seconds"] / base["seconds"], 2)
        print(
            f"{name:<12} {row['rows_accepted']:>9,} {row['rows_anonymous']:>9,} {row['orders']:>7,} "
            f"{row['customers']:>9,} {row['revenue']:>13,.2f} {'yes' if row['same_as_plain'] else 'NO':>5} "
            f"{row['seconds']:>7.2f} {row['time_ratio']:>7.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"when": datetime.now(UTC).isoformat(), "lines": len(lines), "layouts": rows}, indent=2)
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
