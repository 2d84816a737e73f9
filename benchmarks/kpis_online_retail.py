"""Cross-check ``orderlift kpis --preset online-retail`` against a plain pandas count of the raw file.

Usage: ``.venv/bin/python benchmarks/kpis_online_retail.py [--events ../shared/data/online_retail/
online_retail.csv.gz] [--out benchmarks/results/kpis_online_retail.json]``.

The command runs as a user runs it (``--by month --json``). The pandas side reads the raw invoice
lines and applies the preset's rules its own way: fee and postage codes dropped; a cancellation
(``C`` invoice) or negative quantity of a known customer is a return, taken off that customer's
latest purchases of the item; purchases need a positive quantity and price; exact duplicate lines
count once; a line returned in full is dropped. Then per calendar month: AOV = revenue / distinct
invoices, purchase frequency = distinct invoices with a customer / distinct customers. Target
(issue 14): every month's AOV and purchase frequency match to the cent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/training.py would shadow the training package

from features.io import ONLINE_RETAIL_NON_PRODUCTS  # noqa: E402  (the preset's list of fee codes)

DEFAULT_EVENTS = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"


def by_pandas(path: Path) -> pd.DataFrame:
    """Return monthly revenue, orders, AOV and purchase frequency counted from the raw file."""
    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    raw["customer"] = raw["CustomerID"].str.replace(r"\.0$", "", regex=True)
    raw["ts"] = pd.to_datetime(raw["InvoiceDate"])
    fee = raw["StockCode"].str.fullmatch("|".join(f"(?:{p})" for p in ONLINE_RETAIL_NON_PRODUCTS))
    raw = raw[~fee]
    is_return = raw["InvoiceNo"].str.startswith("C") | (raw["Quantity"] < 0)
    returns = raw[is_return & raw["customer"].notna()]
    buys = raw[~is_return & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)]
    key = ["customer", "StockCode", "ts", "InvoiceNo", "Quantity", "UnitPrice"]
    buys = buys[~buys.fillna({"customer": ""}).duplicated(subset=key)].copy()
    buys["qty"] = buys["Quantity"].astype(float)
    owed = returns.assign(q=returns["Quantity"].abs()).groupby(["customer", "StockCode"])["q"].sum()
    netted = buys[buys["customer"].notna()].reset_index()
    netted = netted.merge(owed.rename("owed").reset_index(), on=["customer", "StockCode"])
    netted = netted.sort_values(["customer", "StockCode", "ts", "index"], ascending=[True, True, False, True])
    before = netted.groupby(["customer", "StockCode"])["qty"].cumsum() - netted["qty"]
    netted["taken"] = np.clip(netted["owed"] - before, 0.0, netted["qty"])
    buys.loc[netted["index"].to_numpy(), "qty"] -= netted["taken"].to_numpy()
    buys = buys[buys["qty"] > 0]
    buys["value"] = buys["UnitPrice"] * buys["qty"]
    buys["month"] = buys["ts"].dt.strftime("%Y-%m")
    known = buys[buys["customer"].notna()]
    monthly = pd.DataFrame(
        {
            "revenue": buys.groupby("month")["value"].sum(),
            "orders": buys.groupby("month")["InvoiceNo"].nunique(),
            "customer_orders": known.groupby("month")["InvoiceNo"].nunique(),
            "customers": known.groupby("month")["customer"].nunique(),
        }
    )
    monthly["aov"] = monthly["revenue"] / monthly["orders"]
    monthly["purchase_frequency"] = monthly["customer_orders"] / monthly["customers"]
    return monthly


def by_orderlift(path: Path) -> dict[str, dict[str, Any]]:
    """Return the command's monthly rows, run as a user runs it."""
    command = [str(REPO / ".venv/bin/orderlift"), "kpis", "--preset", "online-retail", "--events", str(path)]
    done = subprocess.run([*command, "--by", "month", "--json"], capture_output=True, text=True, check=True)
    return {row["period"]: row for row in json.loads(done.stdout)["rows"] if row["period"] != "all"}


def main() -> None:
    """Print both sides per month with their differences; write JSON; exit 1 on a mismatch."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=Path, default=DEFAULT_EVENTS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/kpis_online_retail.json")
    args = parser.parse_args()
    ours, theirs = by_orderlift(args.events), by_pandas(args.events)
    months = []
    heads = (
        ("AOV ours", 11),
        ("AOV pandas", 12),
        ("diff", 10),
        ("freq ours", 11),
        ("freq pandas", 13),
        ("diff", 10),
    )
    print(f"{'month':<9}" + "".join(f"{name:>{width}}" for name, width in heads))
    for month, row in theirs.iterrows():
        mine = ours.get(str(month), {})
        aov, freq = mine.get("aov"), mine.get("purchase_frequency")
        d_aov = None if aov is None else abs(aov - row["aov"])
        d_freq = None if freq is None else abs(freq - row["purchase_frequency"])
        months.append({"month": month, "aov": aov, "aov_pandas": row["aov"], "aov_diff": d_aov,
                       "purchase_frequency": freq, "purchase_frequency_pandas": row["purchase_frequency"],
                       "purchase_frequency_diff": d_freq})  # fmt: skip
        print(f"{month:<9}{aov:>11.2f}{row['aov']:>12.2f}{d_aov:>10.2g}{freq:>11.4f}"
              f"{row['purchase_frequency']:>13.4f}{d_freq:>10.2g}")  # fmt: skip
    worst = max((m["aov_diff"] for m in months if m["aov_diff"] is not None), default=None)
    matched = len(ours) == len(theirs) and all(
        m["aov_diff"] is not None
        and round(m["aov"], 2) == round(m["aov_pandas"], 2)
        and m["purchase_frequency_diff"] < 1e-9
        for m in months
    )
    print(f"{len(months)} months; largest AOV difference {worst:.2g}; match to the cent: {matched}")
    result = {"events": str(args.events), "months": months, "matched": matched,
              "at": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0 if matched else 1)


if __name__ == "__main__":
    main()
