"""Fuzz the running service with the schemathesis CLI (``--checks all``), without and with API keys.

Usage: ``.venv/bin/python benchmarks/reliability/schema_fuzz.py [--max-examples 50] [--seed 1]
[--time-limit 600] [--out benchmarks/results/reliability/schema_fuzz.json]``.

Setup (untimed): a synthetic store (3,000 users, 800 items) and an ALS model artifact; for each mode a fresh
``orderlift serve`` (1 worker, in-process cache, event log in a temp dir): ``open`` (no keys) and
``keys`` (ORDERLIFT_API_KEYS set; schemathesis sends ``-H "X-API-Key: ..."``). Each run:
``schemathesis run <url>/openapi.json --checks all --max-examples N --seed S --request-timeout 10
--generation-database none --report json,junit``, killed after ``--time-limit`` s. Its stdout and
reports go to benchmarks/results/reliability/<out stem>/<mode>/.

Criterion: zero failures and zero errors in both runs (schemathesis exit code 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    LOGS,
    RESULTS,
    Server,
    machine,
    make_artifact,
    make_store,
    setup_logging,
    stamp,
    write_json,
)

logger = logging.getLogger("benchmarks.reliability.schema_fuzz")
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
KEY = "reliability-fuzz-key"
HEADING = re.compile(r"^_{3,} (?P<op>[A-Z]+ \S+) _{3,}$")


def parse_failures(stdout: str) -> list[dict[str, Any]]:
    """Split the FAILURES section of schemathesis' output into one entry per failing check."""
    section = stdout.split("= FAILURES =", 1)[-1].split("= WARNINGS =", 1)[0].split("= SUMMARY =", 1)[0]
    found: list[dict[str, Any]] = []
    op = None
    block: list[str] = []

    def flush() -> None:
        if op is None or not block:
            return
        text = "\n".join(block)
        checks = re.findall(r"^- (ST\d+ .+)$", text, flags=re.M)
        curl = re.search(r"^\s+(curl .+)$", text, flags=re.M)
        response = re.search(r"^\[(\d{3})\] (.+?):\n\n\s+`(.*)`", text, flags=re.M | re.S)
        detail = [
            line.strip()
            for line in block
            if line.startswith("    ") and not line.strip().startswith(("curl", "st replay", "`"))
        ]
        found.append({
            "operation": op,
            "checks": checks,
            "detail": [d for d in detail if d][:6],
            "status": int(response.group(1)) if response else None,
            "response_body": response.group(3)[:500] if response else None,
            "reproduce": curl.group(1) if curl else None,
        })  # fmt: skip

    for line in section.splitlines():
        heading = HEADING.match(line.strip())
        if heading:
            flush()
            op, block = heading.group("op"), []
        else:
            block.append(line)
    flush()
    return found


def fuzz(mode: str, artifact: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run schemathesis against a fresh server; return its summary, report and parsed failures."""
    out_dir = args.out.parent / args.out.stem / mode
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    env = {"ORDERLIFT_MODEL_URI": str(artifact), "ORDERLIFT_EVENT_LOG": str(work / f"events-{mode}.jsonl")}
    if mode == "keys":
        env["ORDERLIFT_API_KEYS"] = KEY
    server = Server(env, work, workers=1, name=f"fuzz-{mode}", keep_log_in=LOGS)
    with server.running():
        cmd = [SCHEMATHESIS, "run", f"{server.url}/openapi.json", "--checks", "all",
               "--max-examples", str(args.max_examples), "--seed", str(args.seed),
               "--request-timeout", "10", "--generation-database", "none", "--no-color",
               "--report", "json,junit", "--report-dir", str(out_dir)]  # fmt: skip
        if mode == "keys":
            cmd += ["-H", f"X-API-Key: {KEY}"]
        logger.info("%s: %s", mode, " ".join(cmd))
        began = time.monotonic()
        try:
            done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=args.time_limit,
                                  check=False)  # fmt: skip
            code, stdout = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            code = -1
            stdout = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            stdout += f"\n[killed after the {args.time_limit} s time limit]"
        seconds = time.monotonic() - began
        server_log = server.log.read_text(errors="replace")
    (out_dir / "stdout.txt").write_text(stdout, encoding="utf-8")
    report_path = next(iter(sorted(out_dir.glob("json-*.json"))), None)
    report = json.loads(report_path.read_text()) if report_path else {}
    return {
        "mode": mode,
        "exit_code": code,
        "seconds": round(seconds, 1),
        "command": " ".join(cmd).replace(KEY, "[key]"),
        "operations": report.get("operations"),
        "test_cases": report.get("test_cases"),
        "failure_kinds": report.get("failures", []),
        "errors": report.get("errors", []),
        "warnings": {k: v for k, v in report.get("warnings", {}).items() if v},
        "failures": parse_failures(stdout),
        "server_tracebacks": server_log.count("Traceback"),
        "server_500s": server_log.count('"status": 500'),
        "report_dir": str(out_dir),
    }


def show(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 150))
    table = Table(
        title=f"schemathesis --checks all, --max-examples {result['max_examples']}, seed {result['seed']}"
    )
    for col in ("mode", "exit", "s", "operations", "test cases", "failing cases", "failure kinds", "errors",
                "server 500s", "met?"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("mode", "failure kinds") else "right")
    for r in result["runs"]:
        kinds = ", ".join(f"{f['code']} {f['title']} x{f['count']}" for f in r["failure_kinds"]) or "-"
        cases = r["test_cases"] or {}
        table.add_row(r["mode"], str(r["exit_code"]), f"{r['seconds']:.0f}",
                      str((r["operations"] or {}).get("tested")), str(cases.get("generated")),
                      str(cases.get("with_failures")), kinds, str(len(r["errors"])), str(r["server_500s"]),
                      "[green]yes" if r["exit_code"] == 0 else "[red]NO")  # fmt: skip
    console.print(table)
    fails = Table(title="Failures, grouped by check and answer (an example request for each group)")
    for col in ("mode", "check", "got", "response body", "operations", "example request"):
        fails.add_column(col, overflow="fold")
    for r in result["runs"]:
        groups: dict[tuple[str, Any, str], list[dict[str, Any]]] = {}
        for f in r["failures"]:
            groups.setdefault(("; ".join(f["checks"]), f["status"], f["response_body"] or ""), []).append(f)
        for (check, status, body), members in groups.items():
            ops = ", ".join(m["operation"] for m in members)
            example = (members[0]["reproduce"] or "")[:200]
            fails.add_row(r["mode"], check, str(status), body[:90], ops, example)
    console.print(fails)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=600.0, help="per schemathesis run, seconds")
    parser.add_argument("--out", type=Path, default=RESULTS / "schema_fuzz.json")
    args = parser.parse_args()
    args.out = args.out.resolve()  # schemathesis runs in a temp dir: its --report-dir must be absolute
    setup_logging()
    with tempfile.TemporaryDirectory(prefix="orderlift-rel-fuzz-") as tmp:
        work = Path(tmp)
        artifact = make_artifact(make_store(work / "store"), work / "artifact")
        runs = [fuzz(mode, artifact, work, args) for mode in ("open", "keys")]
    result = {
        "name": "schema_fuzz",
        "timestamp": stamp(),
        "machine": machine(),
        "max_examples": args.max_examples,
        "seed": args.seed,
        "runs": runs,
        "met": all(r["exit_code"] == 0 for r in runs),
    }
    show(result)
    write_json(args.out, result)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
