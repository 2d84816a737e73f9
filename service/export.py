"""Every known user's recommendations, in batches: for a campaign file, or to fill the cache.

``ranked_users`` scores users in batches (one matrix product each), leaves out what each already
has and what they dismissed (in training and in the live events since: ``live_left_out``), and
shapes each list by the rules in force (as the service does).
``export_recommendations`` writes them for an e-mail or push campaign as they come (CSV rows, or
one Parquet row group per batch), so memory stays flat however many users there are. Each user's
list gets its own ``recommendation_id`` (``variant.placement.channel.hex``, as the service mints
them), so the campaign's clicks and orders, sent back as events with it, are attributed to its
placement and channel.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from service.live import DISMISSED_TTL_S, DISMISSING_TYPES, LIVE_TTL_S, OWNING_TYPES
from service.reorder import due_matrix, today_of
from service.rules import ListRules
from service.scorer import Scorer
from training.models import top_n

__all__ = [
    "Exported",
    "LiveLeftOut",
    "Ranked",
    "batch_size",
    "export_recommendations",
    "live_left_out",
    "ranked_users",
]

COLUMNS = ["user_id", "recommendation_id", "rank", "item_id", "name", "category", "price", "score"]
Progress = Callable[[int, int], None]
#: Scores held per batch (users x items): 16 MB of float32, 2,000 users of a 2,000-item catalog.
SCORES_PER_BATCH = 4_000_000


@dataclass(frozen=True)
class Ranked:
    """One user's list: item rows, scores and the rules that changed it."""

    row: int
    items: np.ndarray
    scores: np.ndarray
    applied: list[str]


@dataclass(frozen=True)
class Exported:
    """What an export wrote."""

    users: int
    rows: int
    version: str
    variant: str


@dataclass(frozen=True)
class LiveLeftOut:
    """What live events since training take out of known users' lists (users x items, 1 = out).

    As the service's live history keeps them: carts and purchases of the last 30 days (``owned``;
    ``purchased``, the bought ones, are not due again in a buy-again list) and dismissals of the
    last year.
    """

    owned: sp.csr_matrix
    purchased: sp.csr_matrix
    dismissed: sp.csr_matrix


def live_left_out(scorer: Scorer, events: Sequence[dict[str, Any]], now: datetime) -> LiveLeftOut:
    """Return what the logged live ``events`` leave out of each known user's list at ``now``."""
    frame = pd.DataFrame.from_records(list(events), columns=["user_id", "item_id", "type", "timestamp"])
    age = pd.Timestamp(now) - pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    seconds = age.dt.total_seconds().to_numpy()
    rows = scorer.users.to_index(frame["user_id"].fillna("").astype(str))
    items = pd.Index(np.asarray(scorer.catalog.ids, dtype=object)).get_indexer(
        frame["item_id"].fillna("").astype(str)
    )
    kind = frame["type"].fillna("").astype(str)
    known = (rows >= 0) & (items >= 0)
    shape = (len(scorer.users), len(scorer.catalog))

    def cells(mask: np.ndarray) -> sp.csr_matrix:
        pick = known & mask
        found = sp.csr_matrix((np.ones(int(pick.sum()), np.float32), (rows[pick], items[pick])), shape=shape)
        found.data[:] = 1.0
        return found

    recent = seconds <= LIVE_TTL_S
    return LiveLeftOut(
        owned=cells(kind.isin(OWNING_TYPES).to_numpy() & recent),
        purchased=cells((kind == "purchase").to_numpy() & recent),
        dismissed=cells(kind.isin(DISMISSING_TYPES).to_numpy() & (seconds <= DISMISSED_TTL_S)),
    )


def batch_size(scorer: Scorer, batch: int | None = None) -> int:
    """Return the users per batch: ``batch``, else as many as keep a batch's scores near 4M floats."""
    return batch or max(16, SCORES_PER_BATCH // max(len(scorer.catalog), 1))


def ranked_users(
    scorer: Scorer,
    n: int,
    rules: ListRules,
    batch: int | None = None,
    reorder_horizon: int | None = None,
    live: LiveLeftOut | None = None,
) -> Iterator[list[Ranked]]:
    """Yield every known user's best ``n`` items, a batch of users at a time.

    With ``reorder_horizon`` (days), the lists are buy-again lists (``service.reorder``): each
    customer's own past items, the most due first; else the model's recommendations of new items.
    ``live`` takes out what live events since training did, as the service does.
    """
    total, batch = len(scorer.users), batch_size(scorer, batch)
    found = scorer.loaded.artifact.reorder
    for start in range(0, total, batch):
        rows = np.arange(start, min(start + batch, total))
        history = scorer.history[rows]
        if reorder_horizon is not None and found is not None:
            scores, _ = due_matrix(found, rows, today_of(scorer), reorder_horizon, len(scorer.catalog))
            excluded = sp.csr_matrix(history.shape, dtype=np.float32)
            if live is not None:  # bought since training: not due yet; carted or dismissed: out
                r, c = live.purchased[rows].nonzero()
                scores[r, c] = np.minimum(scores[r, c], 0.0)
                excluded = sp.csr_matrix(
                    excluded + live.owned[rows] - live.owned[rows].multiply(live.purchased[rows])
                )
        else:
            scores, excluded = scorer.model.score(history, rows), history
            if live is not None:
                excluded = sp.csr_matrix(excluded + live.owned[rows])
        if live is not None:
            excluded = sp.csr_matrix(excluded + live.dismissed[rows])
        if scorer.dismissed is not None:
            excluded = sp.csr_matrix(excluded + scorer.dismissed[rows])
        if rules.active or rules.cap is not None:  # shaped one user at a time, as the service does
            dense = np.asarray(scores, dtype=np.float32)
            r, c = excluded.nonzero()
            dense[r, c] = -np.inf
            codes = scorer.catalog.cap_codes
            yield [Ranked(int(row), *rules.top(dense[k], n, codes)) for k, row in enumerate(rows)]
            continue
        idx, values = top_n(scores, n, excluded)
        keep = np.isfinite(values)
        yield [Ranked(int(row), idx[k][keep[k]], values[k][keep[k]], []) for k, row in enumerate(rows)]


def export_recommendations(
    scorer: Scorer,
    out: Path,
    n: int,
    rules: ListRules,
    placement: str | None,
    channel: str | None,
    fmt: Literal["csv", "parquet"] = "csv",
    on_batch: Progress | None = None,
    batch: int | None = None,
    reorder_horizon: int | None = None,
    live: LiveLeftOut | None = None,
) -> Exported:
    """Write one row per recommended item of every known user (``COLUMNS``), batch by batch.

    The file appears at ``out`` only when complete (written beside it, then renamed), so a
    campaign tool never picks up half an export.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial")
    users = written = 0
    sink = _CsvSink(staging) if fmt == "csv" else _ParquetSink(staging)
    try:
        for lists in ranked_users(scorer, n, rules, batch, reorder_horizon, live):
            columns = _columns(scorer, lists, placement, channel)
            sink.write(columns)
            users += len(lists)
            written += len(columns["user_id"])
            if on_batch is not None:
                on_batch(users, len(scorer.users))
        sink.close()
    except BaseException:
        sink.close()
        staging.unlink(missing_ok=True)
        raise
    staging.replace(out)
    return Exported(users, written, scorer.version, scorer.variant)


def _columns(
    scorer: Scorer, lists: list[Ranked], placement: str | None, channel: str | None
) -> dict[str, list[object]]:
    """Return a batch of users' lists as columns, one recommendation id per user."""
    columns: dict[str, list[object]] = {name: [] for name in COLUMNS}
    facts = scorer.catalog.facts
    for ranked in lists:
        user = str(scorer.users.ids[ranked.row])
        minted = scorer.new_recommendation_id(placement, channel)
        pairs = zip(ranked.items.tolist(), ranked.scores.tolist(), strict=True)
        for rank, (item, score) in enumerate(pairs, start=1):
            about = facts[item]
            row = (user, minted, rank, about["item_id"], about["name"], about["category"], about["price"])
            for name, value in zip(COLUMNS, (*row, round(score, 6)), strict=True):
                columns[name].append(value)
    return columns


class _CsvSink:
    """CSV rows with a header, written as they come."""

    def __init__(self, path: Path) -> None:
        self.handle = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(COLUMNS)

    def write(self, columns: dict[str, list[object]]) -> None:
        self.writer.writerows(zip(*columns.values(), strict=True))

    def close(self) -> None:
        self.handle.close()


class _ParquetSink:
    """One Parquet row group per batch, under a fixed schema."""

    SCHEMA = pa.schema(
        [
            ("user_id", pa.string()),
            ("recommendation_id", pa.string()),
            ("rank", pa.int32()),
            ("item_id", pa.string()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("price", pa.float64()),
            ("score", pa.float64()),
        ]
    )

    def __init__(self, path: Path) -> None:
        self.writer = pq.ParquetWriter(str(path), self.SCHEMA)

    def write(self, columns: dict[str, list[object]]) -> None:
        self.writer.write_table(pa.table(columns, schema=self.SCHEMA))

    def close(self) -> None:
        self.writer.close()
