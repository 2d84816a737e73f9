"""Cart cross-sell quality through the HTTP API on UCI Online Retail, with the offline baselines beside it.

Usage: ``.venv/bin/python benchmarks/crosssell_http.py [--cutoff 2011-10-01] [--seed 0] [--concurrency 8]
[--limit N] [--out benchmarks/results/crosssell_http.json] [--data PATH] [--workdir DIR]``.

Protocol (also written into the JSON):

1. Chronological cut at ``--cutoff`` (naive InvoiceDate, read as UTC like the pipeline does). Every raw
   row before it (cancellations included: the pipeline nets them) goes to a temporary gzip'd CSV with
   the file's columns, and ``orderlift train --preset online-retail --model als --no-track`` trains on
   only that, with default settings (its own validation/test cross-sell table, inside the pre-cutoff
   period, is kept as printed). Its wall time is recorded.
2. ``orderlift serve --model-uri BUNDLE`` (defaults, no ``ORDERLIFT_*`` variables) on 127.0.0.1 and a
   free port; the run waits for ``/readyz`` = 200 and stops the server at the end, on error too.
3. Test invoices: rows at or after the cutoff, not cancellations (InvoiceNo starting with "C"),
   Quantity > 0, UnitPrice > 0, StockCode (trimmed) not fully matching the preset's non-product
   patterns. Lines are grouped by InvoiceNo; invoices of >= 2 distinct StockCodes are kept. From each
   one distinct item is held out uniformly at random (numpy ``default_rng(--seed)``, drawn for every
   invoice in InvoiceNo order before ``--limit`` samples invoices, so a limit does not change any
   draw); its price is the mean UnitPrice of its lines in the invoice. The other distinct items are
   the cart, each with its summed quantity (int, >= 1): ``POST /v1/cart/cross-sell`` with
   ``{"items": [...], "n": 10}`` anonymously, and, when the invoice has a CustomerID, once more with
   ``"user_id"`` (the id as the pipeline writes it: ``17850.0`` -> ``17850``). Concurrency
   ``--concurrency`` (8) over one keep-alive pool, loopback only.
4. Per group: hit@k = share of carts whose held-out item is among the first k answered item ids
   (k = 5, 10); revenue@10 = held-out price summed over hits / held-out price summed over all carts.
   Groups: ``anonymous`` (every test cart, no user_id), ``known customer`` (carts whose CustomerID is
   among the artifact's users, posted with user_id) and ``known, posted anonymously`` (the same carts'
   anonymous answers). Non-200 answers are counted by status; latencies are client-side (send to
   last byte, under the concurrency above). The largest test cart is also timed alone, uncached
   (same items, every quantity 1: another cache key, the same ranking work), and so is a synthetic
   cart of the 1,500 items in most pre-cutoff orders when no test cart is over 1,500 lines; the
   target is a 200 within 250 ms.
5. Baselines, offline, on exactly the same carts and held-out items: cart models fitted on
   ``training.job.all_orders`` of the pre-cutoff file loaded as the training job loads it
   (``features.dataset.load_dataset``, anonymous orders included), ranked by ``CartRanker`` with
   price exponent 0, n = 10, every item in stock, no substitutes: ``popular``, ``cooccurrence``,
   ``confidence``, ``noisy_or``, ``cosine`` (default parameters) and ``ease`` (regularization 50,
   half-life 90 days); for known customers also that EASE with ``Blend(buy_again=0.2)``, boosted by
   the customer's row of the interactions matrix. Cart items outside the training item index are
   dropped from the cart; a held-out item outside it is a miss (its price still counts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if sys.path and Path(sys.path[0]).resolve() == REPO / "benchmarks":
    sys.path[0] = str(REPO)  # benchmarks/training.py would shadow the training package
BIN = Path(sys.executable).parent
DATA = REPO.parent / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
N = 10
KS = (5, 10)
SYNTHETIC_LINES = 1_500
TARGET_MS = 250.0
EASE_PARAMS: dict[str, Any] = {"regularization": 50.0, "half_life_days": 90.0}
BASELINES: dict[str, dict[str, Any]] = {
    "popular": {},
    "cooccurrence": {},
    "confidence": {},
    "noisy_or": {},
    "cosine": {},
    "ease": EASE_PARAMS,
}
BUY_AGAIN = 0.2
GROUPS = ("anonymous", "known customer", "known, posted anonymously")
_FLOAT_ID = re.compile(r"-?\d+\.0+")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cart:
    """One test invoice: its cart lines, the item held out of it, and its customer."""

    invoice: str
    customer: str | None  # as the pipeline writes ids; None: no CustomerID
    lines: tuple[tuple[str, int], ...]  # (item id, summed quantity), sorted by item id
    held: str
    held_price: float


@dataclass
class Answer:
    """One HTTP answer: status, client-side latency, the suggested ids (or an error excerpt)."""

    status: int
    seconds: float
    items: list[str]
    cache: str | None = None
    error: str | None = None


def pipeline_id(value: str) -> str | None:
    """Return a CustomerID as the pipeline encodes it (trimmed, ``17850.0`` -> ``17850``), or None."""
    value = value.strip()
    if not value:
        return None
    return re.sub(r"\.0+$", "", value) if _FLOAT_ID.fullmatch(value) else value


def read_raw(path: Path) -> pd.DataFrame:
    """Read the export as strings (so the train file keeps every value as written) plus parsed columns."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw["_ts"] = pd.to_datetime(raw["InvoiceDate"], format="%Y-%m-%d %H:%M:%S")
    return raw


def product_lines(frame: pd.DataFrame, non_products: Sequence[str]) -> pd.DataFrame:
    """Return purchase lines of products: no cancellation, Quantity > 0, UnitPrice > 0, a product code."""
    pattern = "|".join(f"(?:{p})" for p in non_products)
    item = frame["StockCode"].str.strip()
    quantity = pd.to_numeric(frame["Quantity"], errors="coerce")
    price = pd.to_numeric(frame["UnitPrice"], errors="coerce")
    keep = (
        ~frame["InvoiceNo"].str.strip().str.startswith("C")
        & (quantity > 0)
        & (price > 0)
        & (item.str.len() > 0)
        & ~item.str.fullmatch(pattern).fillna(False).astype(bool)
    )
    out = pd.DataFrame(
        {
            "invoice": frame["InvoiceNo"].str.strip(),
            "item": item,
            "quantity": quantity,
            "price": price,
            "customer": frame["CustomerID"].map(pipeline_id),
            "ts": frame["_ts"],
        }
    )
    return out[keep.to_numpy()].reset_index(drop=True)


def build_carts(test: pd.DataFrame, seed: int, limit: int | None) -> tuple[list[Cart], dict[str, int]]:
    """Group test lines by invoice, hold one distinct item out of each of 2+ items (seeded)."""
    per_item = (
        test.groupby(["invoice", "item"], sort=True)
        .agg(quantity=("quantity", "sum"), price=("price", "mean"))
        .reset_index()
    )
    customers = test.groupby("invoice", sort=True)["customer"].first()
    rng = np.random.default_rng(seed)
    carts: list[Cart] = []
    invoices = 0
    for invoice, lines in per_item.groupby("invoice", sort=True):
        invoices += 1
        if len(lines) < 2:
            continue
        at = int(rng.integers(len(lines)))
        items = lines["item"].tolist()
        quantities = [max(1, round(q)) for q in lines["quantity"].tolist()]
        cart = tuple((i, q) for k, (i, q) in enumerate(zip(items, quantities, strict=True)) if k != at)
        customer = customers.loc[invoice]
        carts.append(
            Cart(
                str(invoice),
                None if pd.isna(customer) else str(customer),
                cart,
                items[at],
                float(lines["price"].iloc[at]),
            )
        )
    eligible = len(carts)
    if limit is not None and len(carts) > limit:
        pick = np.sort(np.random.default_rng(seed + 1).choice(len(carts), limit, replace=False))
        carts = [carts[i] for i in pick]
    counts = {"test_invoices": invoices, "test_invoices_2plus_items": eligible, "carts_used": len(carts)}
    return carts, counts


def train(train_csv: Path, artifact: Path, work: Path) -> dict[str, Any]:
    """Run ``orderlift train`` with defaults on the pre-cutoff file; return wall time and its output."""
    cmd = [str(BIN / "orderlift"), "train", "--events", str(train_csv), "--preset", "online-retail",
           "--model", "als", "--out", str(artifact), "--no-track"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLIFT_")}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", COLUMNS="160")
    logger.info("training: %s", " ".join(cmd))
    began = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(
            f"orderlift train failed ({done.returncode}) after {wall:.1f} s:\n"
            f"--- stdout ---\n{done.stdout[-5000:]}\n--- stderr ---\n{done.stderr[-8000:]}"
        )
    logger.info("trained in %.1f s", wall)
    return {
        "command": cmd,
        "wall_s": round(wall, 2),
        "stdout": done.stdout,
        "stderr_tail": done.stderr[-3000:],
    }


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except OSError:
        return 0


@contextmanager
def server(artifact: Path, work: Path) -> Iterator[int]:
    """Run ``orderlift serve`` (defaults) on a free loopback port until ``/readyz`` is 200; stop it after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERLIFT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    cmd = [str(BIN / "orderlift"), "serve", "--model-uri", str(artifact), "--host", "127.0.0.1", "--port",
           str(port)]  # fmt: skip
    log = work / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"orderlift serve did not become ready:\n{log.read_text()[-4000:]}")
            time.sleep(0.25)
        logger.info("server ready on port %d (pid %d)", port, proc.pid)
        yield port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


def body(lines: Sequence[tuple[str, int]], user: str | None, n: int = N) -> dict[str, Any]:
    out: dict[str, Any] = {"items": [{"item_id": i, "quantity": q} for i, q in lines], "n": n}
    if user is not None:
        out["user_id"] = user
    return out


async def post_all(port: int, bodies: list[dict[str, Any]], concurrency: int) -> list[Answer]:
    """POST every body to the cross-sell route with ``concurrency`` workers; keep answers in order."""
    import httpx

    url = f"http://127.0.0.1:{port}/v1/cart/cross-sell"
    answers: list[Answer | None] = [None] * len(bodies)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for k in range(len(bodies)):
        queue.put_nowait(k)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clock = time.perf_counter

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                k = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            began = clock()
            try:
                resp = await client.post(url, json=bodies[k])
                seconds = clock() - began
                if resp.status_code == 200:
                    ids = [str(x["item_id"]) for x in resp.json()["items"]]
                    answers[k] = Answer(200, seconds, ids, resp.headers.get("x-cache"))
                else:
                    answers[k] = Answer(
                        resp.status_code, seconds, [], resp.headers.get("x-cache"), resp.text[:600]
                    )
            except httpx.HTTPError as exc:
                answers[k] = Answer(0, clock() - began, [], None, f"{type(exc).__name__}: {exc}")
            if (done := len(bodies) - queue.qsize()) % 1000 == 0:
                logger.info("posted %d / %d", done, len(bodies))

    async with httpx.AsyncClient(timeout=60.0, limits=limits, trust_env=False) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return [a if a is not None else Answer(0, 0.0, [], None, "not sent") for a in answers]


def timed_post(port: int, payload: dict[str, Any]) -> dict[str, Any]:
    """POST one body alone and time it (client-side)."""
    import httpx

    with httpx.Client(timeout=60.0, trust_env=False) as client:
        began = time.perf_counter()
        resp = client.post(f"http://127.0.0.1:{port}/v1/cart/cross-sell", json=payload)
        ms = (time.perf_counter() - began) * 1e3
    got: dict[str, Any] = {
        "status": resp.status_code,
        "ms": round(ms, 2),
        "x_cache": resp.headers.get("x-cache"),
    }
    if resp.status_code == 200:
        answer = resp.json()
        got |= {"suggestions": len(answer["items"]), "unknown_items": len(answer["unknown_items"]),
                "personalized": answer["personalized"]}  # fmt: skip
    else:
        got["body"] = resp.text[:600]
    got["within_target"] = resp.status_code == 200 and ms <= TARGET_MS
    return got


def bust(lines: Sequence[tuple[str, int]], r: int) -> list[tuple[str, int]]:
    """Return the lines with every quantity 1, the first ``1 + r``: a fresh cache key, the same ranking."""
    return [(item, 1 + r if k == 0 else 1) for k, (item, _) in enumerate(lines)]


def figures(ranked: Sequence[Sequence[str]], carts: Sequence[Cart]) -> dict[str, float | int]:
    """Return hit@5, hit@10 and revenue@10 (held-out price found / held-out price) over ``carts``."""
    if not carts:
        return {
            "carts": 0,
            "hit_at_5": float("nan"),
            "hit_at_10": float("nan"),
            "revenue_at_10": float("nan"),
        }
    out: dict[str, float | int] = {"carts": len(carts)}
    price = np.array([c.held_price for c in carts])
    for k in KS:
        hit = np.array([c.held in list(got)[:k] for got, c in zip(ranked, carts, strict=True)])
        out[f"hit_at_{k}"] = float(hit.mean())
        out[f"revenue_at_{k}"] = float(price[hit].sum() / price.sum())
    return out


def latency(answers: Sequence[Answer]) -> dict[str, float]:
    s = sorted(a.seconds * 1e3 for a in answers)
    if not s:
        return {}
    pick = {f"p{p}_ms": s[min(len(s) - 1, int(p / 100 * len(s)))] for p in (50, 90, 99)}
    return {k: round(v, 2) for k, v in {**pick, "mean_ms": statistics.fmean(s), "max_ms": s[-1]}.items()}


def http_phase(
    port: int, carts: list[Cart], known: np.ndarray, synthetic: list[str], concurrency: int
) -> dict[str, Any]:
    """Post every cart (and the known customers' carts with user_id); time the largest carts alone."""
    warm = timed_post(port, body([(synthetic[0], 1)], None, n=7))  # a cart outside the test set
    logger.info("warm-up answer: %s", warm)
    anon = [body(c.lines, None) for c in carts]
    known_idx = np.flatnonzero(known)
    named = [body(carts[i].lines, carts[i].customer) for i in known_idx]
    logger.info("posting %d anonymous and %d known-customer carts, concurrency %d", len(anon), len(named),
                concurrency)  # fmt: skip
    began = time.perf_counter()
    answers = asyncio.run(post_all(port, anon + named, concurrency))
    elapsed = time.perf_counter() - began
    a_anon, a_named = answers[: len(anon)], answers[len(anon) :]
    statuses = Counter(a.status for a in answers)
    errors = [
        {"request": "anonymous" if k < len(anon) else "known customer",
         "invoice": carts[k if k < len(anon) else int(known_idx[k - len(anon)])].invoice,
         "lines": len((anon + named)[k]["items"]), "status": a.status, "error": a.error}
        for k, a in enumerate(answers) if a.status != 200
    ][:20]  # fmt: skip
    sizes = [len(c.lines) for c in carts]
    largest = int(np.argmax(sizes))
    big = carts[largest]
    alone: dict[str, Any] = {
        "largest_test_cart": {
            "invoice": big.invoice,
            "lines": len(big.lines),
            "in_run_ms": round(a_anon[largest].seconds * 1e3, 2),
            "in_run_status": a_anon[largest].status,
            "alone_uncached": [timed_post(port, body(bust(big.lines, r), None)) for r in range(3)],
        }
    }
    if len(big.lines) <= SYNTHETIC_LINES:
        lines = [(i, 1) for i in synthetic[:SYNTHETIC_LINES]]
        alone["synthetic_1500"] = {
            "lines": len(lines),
            "anonymous_uncached": [timed_post(port, body(bust(lines, r), None)) for r in range(3)],
        }
        if len(known_idx):
            user = carts[int(known_idx[0])].customer
            alone["synthetic_1500"]["known_customer_uncached"] = [
                timed_post(port, body(bust(lines, r), user)) for r in range(3)
            ]
    for name, runs in ((k, v) for entry in alone.values() for k, v in entry.items() if isinstance(v, list)):
        logger.info("%s: %s", name, [(r["status"], r["ms"], r["x_cache"]) for r in runs])
    known_carts = [carts[i] for i in known_idx]
    groups = {
        "anonymous": figures([a.items for a in a_anon], carts),
        "known customer": figures([a.items for a in a_named], known_carts),
        "known, posted anonymously": figures([a_anon[i].items for i in known_idx], known_carts),
    }
    cache = Counter(a.cache or "none" for a in answers)
    return {
        "groups": groups,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_200": {str(k): v for k, v in sorted(statuses.items()) if k != 200},
        "errors": errors,
        "requests": len(answers),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(answers) / elapsed, 1),
        "x_cache": dict(cache),
        "latency": {
            "all": latency(answers),
            "anonymous": latency(a_anon),
            "known customer": latency(a_named),
        },
        "largest": alone,
        "warmup": warm,
    }


def baseline_phase(train_csv: Path, carts: list[Cart], known: np.ndarray) -> dict[str, Any]:
    """Fit every baseline cart model on the pre-cutoff orders; rank the same carts through CartRanker."""
    import scipy.sparse as sp
    from threadpoolctl import threadpool_limits

    from features.dataset import load_dataset
    from features.io import resolve_format
    from training.job import all_orders
    from training.models.cart import create_cart_model
    from training.models.cart_ranking import Blend, CartRanker

    fmt = resolve_format("online-retail", {}, None, {})
    dataset = load_dataset(train_csv, fmt)
    inter = dataset.interactions
    orders = all_orders(dataset)
    n_items = len(inter.items)
    price = inter.item_meta["price"].to_numpy(dtype=np.float64)
    in_stock = np.ones(n_items, dtype=bool)
    substitutes = sp.csr_matrix((n_items, n_items), dtype=bool)
    rows = [inter.items.to_index([i for i, _ in c.lines]) for c in carts]
    rows = [r[r >= 0] for r in rows]
    known_idx = np.flatnonzero(known)
    known_carts = [carts[i] for i in known_idx]
    matrix = inter.matrix.tocsr()
    user_rows = [inter.users.get(str(carts[i].customer)) for i in known_idx]
    dropped = sum(len(c.lines) for c in carts) - sum(len(r) for r in rows)
    unknown_held = sum(inter.items.get(c.held) is None for c in carts)
    info = {
        "train_users": len(inter.users),
        "train_items": n_items,
        "train_orders": len(orders),
        "anonymous_train_orders": int((np.asarray(orders.user_idx) < 0).sum()),
        "cart_lines_unknown_to_train": int(dropped),
        "held_out_unknown_to_train": int(unknown_held),
        "empty_carts_after_drop": int(sum(len(r) == 0 for r in rows)),
        "known_customers_missing_in_dataset": int(sum(u is None for u in user_rows)),
    }
    logger.info("baselines: %s", info)
    out: dict[str, dict[str, Any]] = {}

    def ids(got: np.ndarray) -> list[str]:
        return inter.items.to_ids(got).astype(str).tolist()

    with threadpool_limits(1, "blas"):
        for kind, params in BASELINES.items():
            began = time.perf_counter()
            model = create_cart_model(kind, **params)
            model.fit(orders.matrix, orders.timestamp)
            fit_s = time.perf_counter() - began
            ranker = CartRanker(model, price, in_stock, substitutes, 0.0)
            ranked = [ids(ranker.rank(r, N, exponent=0.0).rows) for r in rows]
            name = f"{kind} {params}" if params else kind
            out[name] = {
                "anonymous": figures(ranked, carts),
                "known, posted anonymously": figures([ranked[i] for i in known_idx], known_carts),
                "fit_s": round(fit_s, 2),
                "params": model.params.as_dict(),
            }
            logger.info("%s: %s (fit %.1f s)", name, out[name]["anonymous"], fit_s)
            if kind == "ease":
                blend = Blend(buy_again=BUY_AGAIN)
                with_boost = []
                for i, user in zip(known_idx, user_rows, strict=True):
                    boost = None
                    if user is not None:
                        boost = blend.boost(np.asarray(matrix[user].toarray()).ravel(), None)
                    with_boost.append(ids(ranker.rank(rows[i], N, exponent=0.0, boost=boost).rows))
                out[f"{name} + Blend(buy_again={BUY_AGAIN})"] = {
                    "known customer": figures(with_boost, known_carts),
                    "params": {**model.params.as_dict(), "buy_again": BUY_AGAIN},
                }
    return {"info": info, "rankers": out}


def synthetic_items(train_lines: pd.DataFrame) -> list[str]:
    """Return the pre-cutoff items by number of orders (most first; ties by id)."""
    counts = train_lines.drop_duplicates(["invoice", "item"])["item"].value_counts()
    frame = counts.rename_axis("item").reset_index(name="orders")
    frame = frame.sort_values(["orders", "item"], ascending=[False, True])
    return frame["item"].tolist()


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)), "loadavg": os.getloadavg(),
            **{lib: version(lib) for lib in ("numpy", "scipy", "pandas", "implicit", "fastapi", "uvicorn",
                                             "httpx")}}  # fmt: skip


def table_rows(
    http: dict[str, Any], base: dict[str, Any], kind: str
) -> list[tuple[str, str, dict[str, Any]]]:
    rows = [(f"HTTP service ({kind})", g, http["groups"][g]) for g in GROUPS]
    for name, entry in base["rankers"].items():
        rows += [(f"offline {name}", g, entry[g]) for g in GROUPS if g in entry]
    return rows


def show(rows: list[tuple[str, str, dict[str, Any]]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("ranker", "group", "carts", "hit@5", "hit@10", "revenue@10"):
        table.add_column(col, justify="left" if col in ("ranker", "group") else "right")
    for ranker, group, f in rows:
        table.add_row(ranker, group, f"{f['carts']:,}", f"{f['hit_at_5']:.4f}", f"{f['hit_at_10']:.4f}",
                      f"{f['revenue_at_10']:.4f}")  # fmt: skip
    Console(width=max(Console().width, 150)).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoff", default="2011-10-01", help="first test day (naive, read as UTC)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None, help="max test invoices (seeded sample)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--workdir", type=Path, help="keep the train file and artifact here and reuse them")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/crosssell_http.json")
    args = parser.parse_args()
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler()])
    from features.io import resolve_format

    started = time.perf_counter()
    fmt = resolve_format("online-retail", {}, None, {})
    cutoff = pd.Timestamp(args.cutoff)
    raw = read_raw(args.data)
    before = (raw["_ts"] < cutoff).to_numpy()
    logger.info(
        "%d rows: %d before %s, %d at or after", len(raw), before.sum(), cutoff.date(), (~before).sum()
    )
    carts, counts = build_carts(product_lines(raw[~before], fmt.non_product_patterns), args.seed, args.limit)
    synthetic = synthetic_items(product_lines(raw[before], fmt.non_product_patterns))
    counts |= {"raw_rows": len(raw), "train_rows": int(before.sum()), "test_rows": int((~before).sum())}
    with tempfile.TemporaryDirectory(prefix="orderlift-crosssell-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        train_csv, artifact = work / "train.csv.gz", work / "artifact"
        if not train_csv.is_file():
            raw.loc[before, [c for c in raw.columns if c != "_ts"]].to_csv(train_csv, index=False,
                                                                           compression="gzip")  # fmt: skip
        del raw
        if (artifact / "manifest.json").is_file():
            logger.warning("reusing the artifact in %s: no training time measured", artifact)
            trained: dict[str, Any] = {"reused_artifact": str(artifact), "wall_s": None, "stdout": None}
        else:
            trained = train(train_csv, artifact, work)
        manifest = json.loads((artifact / "manifest.json").read_text())
        users = set(np.load(artifact / "users.npy", allow_pickle=False).astype(str).tolist())
        known = np.array([c.customer is not None and c.customer in users for c in carts], dtype=bool)
        counts |= {
            "carts_with_customer_id": sum(c.customer is not None for c in carts),
            "carts_known_customer": int(known.sum()),
            "artifact_users": len(users),
            "largest_cart_lines": max(len(c.lines) for c in carts),
            "carts_over_2000_lines": sum(len(c.lines) > 2000 for c in carts),
            "carts_over_1500_lines": sum(len(c.lines) > SYNTHETIC_LINES for c in carts),
        }
        logger.info("counts: %s", counts)
        with server(artifact, work) as port:
            http = http_phase(port, carts, known, synthetic, args.concurrency)
        logger.info(
            "HTTP: %s; statuses %s; latency %s", http["groups"], http["statuses"], http["latency"]["all"]
        )
        base = baseline_phase(train_csv, carts, known)
    spec = manifest.get("crosssell") or {}
    kind = str(spec.get("kind") or spec.get("chosen") or "?")
    rows = table_rows(http, base, kind)
    title = f"Cart cross-sell on Online Retail, test from {cutoff.date()} (n={N}, seed {args.seed})"
    show(rows, title)
    total = time.perf_counter() - started
    result = {
        "benchmark": "crosssell_http",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": __doc__.split("Protocol (also written into the JSON):", 1)[1].strip(),
        "cutoff": args.cutoff,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "limit": args.limit,
        "n": N,
        "data": str(args.data),
        "counts": counts,
        "table": [{"ranker": r, "group": g, **f} for r, g, f in rows],
        "http": http,
        "baselines": base,
        "artifact": {"model": manifest.get("model"), "crosssell": spec},
        "train": trained,
        "total_s": round(total, 1),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    logger.info("wrote %s in %.0f s", args.out, total)


if __name__ == "__main__":
    main()
