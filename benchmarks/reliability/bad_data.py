"""Real and malformed data through the CLI: every row accounted for, every bad file one line and exit 2.

Usage: ``.venv/bin/python benchmarks/reliability/bad_data.py [--retail PATH] [--skip-train]
[--out benchmarks/results/reliability/bad_data.json]``.

1. The full Online Retail file through ``orderlift inspect --preset online-retail --json
   --quarantine Q`` (rows_read == rows_accepted + sum(rejected), the report's own ``reconciled``
   flag, and Q holding exactly sum(rejected) rows) and ``orderlift train --preset online-retail
   --model als --no-track --holdout 0.2`` (exit 0, no traceback, the same rows read and accepted
   as inspect).
2. Malformed inputs through ``orderlift inspect --events FILE``: a truncated gzip (the first half of
   the Online Retail file, with the preset so only the truncation is wrong), a binary file, a CSV
   with the wrong columns, an empty file, a file with only a header; extras: a missing path, a
   directory, random bytes named .parquet, a gzip of random bytes, ``inspect --json`` on the empty
   file, and ``orderlift train`` on the header-only file and on a file whose every row is rejected.
   Each must exit 2 with exactly one non-empty stderr line and no traceback.

Every command runs with a 15-minute time limit, in a temp dir.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ORDERLIFT, REPO, RESULTS, machine, setup_logging, stamp, write_json

logger = logging.getLogger("benchmarks.reliability.bad_data")
RETAIL = REPO.parent / "shared/data/online_retail/online_retail.csv.gz"
CANONICAL_HEADER = "user_id,item_id,timestamp,event_type,order_id,quantity,price\n"


def run(cmd: list[str], cwd: Path, timeout_s: float = 900.0) -> dict[str, Any]:
    """Run ``cmd``; return exit code, stdout, stderr lines and seconds (never raises on failure)."""
    began = time.monotonic()
    env_cols = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False,
                              env={**os.environ, **env_cols})  # fmt: skip
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        code, out, err = -1, "", f"[killed after {timeout_s} s]"
    return {
        "cmd": " ".join(c if " " not in c else repr(c) for c in cmd),
        "exit_code": code,
        "stdout": out,
        "stderr_lines": [line for line in err.splitlines() if line.strip()],
        "seconds": round(time.monotonic() - began, 2),
    }


def retail_checks(retail: Path, work: Path, skip_train: bool) -> list[dict[str, Any]]:
    """Inspect and train on the full Online Retail file; reconcile every row."""
    rows = []
    quarantine = work / "quarantine.csv"
    done = run([ORDERLIFT, "inspect", "--preset", "online-retail", "--events", str(retail), "--json",
                "--quarantine", str(quarantine)], work)  # fmt: skip
    report: dict[str, Any] = {}
    with contextlib.suppress(json.JSONDecodeError):
        report = json.loads(done["stdout"])
    rejected = report.get("rejected", {})
    quarantined = _count_rows(quarantine)
    balance = report.get("rows_read", -1) - report.get("rows_accepted", 0) - sum(rejected.values())
    inspect_ok = (done["exit_code"] == 0 and bool(report) and balance == 0
                  and report.get("reconciled") is True and quarantined == sum(rejected.values())
                  and not _traceback(done))  # fmt: skip
    rows.append({
        "case": "Online Retail: inspect --json --quarantine", "exit_code": done["exit_code"],
        "seconds": done["seconds"], "rows_read": report.get("rows_read"),
        "rows_accepted": report.get("rows_accepted"), "rejected": rejected,
        "rejected_total": sum(rejected.values()), "unaccounted": balance,
        "reconciled_flag": report.get("reconciled"), "quarantine_rows": quarantined,
        "stderr_lines": done["stderr_lines"][:5], "met": inspect_ok, "cmd": done["cmd"],
    })  # fmt: skip
    if skip_train:
        return rows
    done = run([ORDERLIFT, "train", "--preset", "online-retail", "--events", str(retail), "--model", "als",
                "--no-track", "--holdout", "0.2", "--out", str(work / "retail-model")], work)  # fmt: skip
    seen = re.search(r"data: ([\d,]+) of ([\d,]+) rows accepted", done["stdout"])
    accepted, read = (int(seen.group(i).replace(",", "")) for i in (1, 2)) if seen else (None, None)
    written = (work / "retail-model/manifest.json").is_file()
    train_ok = (done["exit_code"] == 0 and not _traceback(done) and read == report.get("rows_read")
                and accepted == report.get("rows_accepted") and written)  # fmt: skip
    rows.append({
        "case": "Online Retail: train --model als --holdout 0.2 --no-track", "exit_code": done["exit_code"],
        "seconds": done["seconds"], "rows_read": read, "rows_accepted": accepted,
        "same_as_inspect": read == report.get("rows_read") and accepted == report.get("rows_accepted"),
        "stdout_tail": done["stdout"].splitlines()[-12:], "stderr_lines": done["stderr_lines"][:5],
        "met": train_ok, "cmd": done["cmd"],
    })  # fmt: skip
    return rows


def _count_rows(path: Path) -> int | None:
    """Data rows of a CSV file (header excluded), or None when it was not written."""
    if not path.is_file():
        return None
    import pandas as pd

    return len(pd.read_csv(path, dtype=str, keep_default_na=False))


def _traceback(done: dict[str, Any]) -> bool:
    return any("Traceback" in line for line in done["stderr_lines"]) or "Traceback" in done["stdout"]


def malformed_files(retail: Path, work: Path) -> list[tuple[str, bool, list[str]]]:
    """Write the malformed inputs; return (case, required?, the command's arguments after orderlift)."""
    rng = random.Random(0)
    bad = work / "bad"
    bad.mkdir()
    truncated = bad / "truncated.csv.gz"
    data = retail.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    binary = bad / "binary.csv"
    binary.write_bytes(rng.randbytes(64 * 1024))
    wrong = bad / "wrong_columns.csv"
    wrong.write_text("customer,product,when\nc1,p1,2024-01-01\nc2,p2,2024-01-02\n")
    empty = bad / "empty.csv"
    empty.write_bytes(b"")
    header = bad / "header_only.csv"
    header.write_text(CANONICAL_HEADER)
    parquet = bad / "random.parquet"
    parquet.write_bytes(rng.randbytes(8 * 1024))
    junk_gz = bad / "junk.csv.gz"
    junk_gz.write_bytes(gzip.compress(rng.randbytes(8 * 1024)))
    (bad / "a_directory.csv").mkdir()
    rejected = bad / "all_rejected.csv"  # every row lacks a user id
    rejected.write_text(CANONICAL_HEADER + "".join(f",i{k},2024-01-0{k} 10:00:00,purchase,o{k},1,2.5\n"
                                                   for k in range(1, 6)))  # fmt: skip
    return [
        ("truncated gzip (first half of Online Retail, --preset)", True,
         ["inspect", "--preset", "online-retail", "--events", str(truncated)]),
        ("binary file (64 KiB random bytes, .csv)", True, ["inspect", "--events", str(binary)]),
        ("CSV with the wrong columns", True, ["inspect", "--events", str(wrong)]),
        ("empty file (0 bytes)", True, ["inspect", "--events", str(empty)]),
        ("header only", True, ["inspect", "--events", str(header)]),
        ("extra: missing path", False, ["inspect", "--events", str(bad / "nope.csv")]),
        ("extra: a directory", False, ["inspect", "--events", str(bad / "a_directory.csv")]),
        ("extra: random bytes named .parquet", False, ["inspect", "--events", str(parquet)]),
        ("extra: gzip of random bytes", False, ["inspect", "--events", str(junk_gz)]),
        ("extra: train on the header-only file", False,
         ["train", "--events", str(header), "--no-track", "--holdout", "none", "--out", str(work / "b")]),
        ("extra: inspect --json on the empty file", False, ["inspect", "--events", str(empty), "--json"]),
        ("extra: train on a file whose every row is rejected", False,
         ["train", "--events", str(rejected), "--no-track", "--holdout", "none", "--out", str(work / "c")]),
    ]  # fmt: skip


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 160))
    table = Table(title="Online Retail through the CLI: every row accounted for")
    for col in (
        "case",
        "exit",
        "s",
        "rows read",
        "accepted",
        "rejected",
        "unaccounted",
        "quarantine rows",
        "met?",
    ):
        table.add_column(col, justify="left" if col == "case" else "right")

    def num(value: Any) -> str:
        return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)

    for r in result["retail"]:
        table.add_row(r["case"], str(r["exit_code"]), f"{r['seconds']:.1f}", num(r["rows_read"]),
                      num(r["rows_accepted"]), num(r.get("rejected_total", "(as inspect)")),
                      num(r.get("unaccounted")), num(r.get("quarantine_rows")),
                      "[green]yes" if r["met"] else "[red]NO")  # fmt: skip
    console.print(table)
    if result["retail"]:
        console.print(f"rejected by reason: {result['retail'][0]['rejected']}")
    bad = Table(title="Malformed inputs: exit code 2 and exactly one stderr line, never a traceback")
    for col in ("case", "req?", "exit", "stderr lines", "the message", "met?"):
        bad.add_column(col, overflow="fold", justify="left")
    for r in result["malformed"]:
        message = " | ".join(r["stderr_lines"])[:300]
        met = "[green]yes" if r["met"] else "[red]NO"
        bad.add_row(r["case"], "yes" if r["required"] else "extra", str(r["exit_code"]),
                    str(len(r["stderr_lines"])), message, met)  # fmt: skip
    console.print(bad)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retail", type=Path, default=RETAIL)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "bad_data.json")
    args = parser.parse_args()
    setup_logging()
    if not args.retail.is_file():
        logger.error("%s not found", args.retail)
        return 2
    with tempfile.TemporaryDirectory(prefix="orderlift-rel-data-") as tmp:
        work = Path(tmp)
        logger.info("Online Retail: inspect%s", "" if args.skip_train else " and train")
        retail = retail_checks(args.retail, work, args.skip_train)
        malformed = []
        for case, required, cli in malformed_files(args.retail, work):
            done = run([ORDERLIFT, *cli], work, timeout_s=300)
            ok = done["exit_code"] == 2 and len(done["stderr_lines"]) == 1 and not _traceback(done)
            malformed.append({"case": case, "required": required, "exit_code": done["exit_code"],
                              "stderr_lines": done["stderr_lines"][:40], "met": ok,
                              "cmd": done["cmd"].replace(str(work), "$TMP"),
                              "seconds": done["seconds"]})  # fmt: skip
            logger.info("%s: exit %s, %d stderr line(s)", case, done["exit_code"], len(done["stderr_lines"]))
    for r in retail:
        r["cmd"] = r["cmd"].replace(str(work), "$TMP")
    result = {
        "name": "bad_data",
        "timestamp": stamp(),
        "machine": machine(),
        "retail_path": str(args.retail),
        "retail": retail,
        "malformed": malformed,
        "met_required": all(r["met"] for r in retail) and all(r["met"] for r in malformed if r["required"]),
        "met_extras": all(r["met"] for r in malformed if not r["required"]),
    }
    result["met"] = result["met_required"]
    show(result)
    write_json(args.out, result)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
