"""The experiment report and the dismissal counts, kept up to date by following the event log.

A ``ReportFeed`` folds the events logged after its cursor into a ``Tally`` (running per-variant
sums), into ``shop`` (the shop's KPIs per week and month, ``features.kpis``) and into
``dismissed`` (per item, per reason: what shoppers said "not interested" to), and answers from
them, so a report costs the events since the last one, not every event ever logged.
The first report of a process (or ``catch_up`` at start) reads the log once, in pages, off the
event loop; concurrent reports wait for one fold. Log entries that are not JSON events are skipped
and counted (``skipped``), never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from features.attribution import Tally
from features.kpis import ItemPrices, KpiTally, Period
from features.schema import LiveEventType
from service.event_log import EventSink

__all__ = ["ReportFeed"]

logger = logging.getLogger(__name__)

COLUMNS = ["event_id", "user_id", "item_id", "type", "timestamp", "order_id", "quantity", "price"]
COLUMNS += ["variant", "placement", "channel", "reason"]
BREAKDOWNS = ("placement", "channel")  # the report is also broken down by these
REASONS_PER_ITEM = 20  # distinct reasons kept per item; more are counted as "other"
NO_REASON = "unspecified"
REPORT_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orderlift-report")


class ReportFeed:
    """Running experiment sums over one event log, folded forward on demand."""

    def __init__(self, sink: EventSink, prices: Callable[[], ItemPrices | None] = lambda: None) -> None:
        self.sink = sink
        self.prices = prices  # list prices and costs of the served catalog, for the discount rate
        self.shop = KpiTally()  # the shop's KPIs per week and month over live events
        self.tally = Tally()
        self.breakdowns = {by: Tally(by=by) for by in BREAKDOWNS}
        self.dismissed: dict[str, dict[str, int]] = {}  # item: reason: dismissals
        self.cursor: str | None = None
        self.folded = 0
        self.skipped = 0
        self._lock = asyncio.Lock()

    async def catch_up(self) -> int:
        """Fold every event logged since the last call; return how many were folded."""
        loop = asyncio.get_running_loop()
        folded = 0
        async with self._lock:
            while True:
                page = await self.sink.read_since(self.cursor)
                if page.events:
                    frame = pd.DataFrame.from_records(page.events, columns=COLUMNS)
                    await loop.run_in_executor(REPORT_EXECUTOR, self._fold, frame)
                self.cursor = page.cursor
                folded += len(page.events)
                self.skipped += page.bad
                if page.last:
                    break
        self.folded += folded
        if folded:
            logger.debug("experiment report: folded %d events (%d in all)", folded, self.folded)
        return folded

    def _fold(self, frame: pd.DataFrame) -> None:
        """Fold a page of events into the experiment sums and the dismissal counts."""
        self.tally.add(frame)
        for tally in self.breakdowns.values():
            tally.add(frame)
        self.shop.prices = self.prices()
        self.shop.add(frame)
        dismissals = frame[frame["type"] == LiveEventType.DISMISS.value]
        if dismissals.empty:
            return
        reasons = dismissals["reason"].fillna(NO_REASON).astype(str)
        counted = reasons.groupby([dismissals["item_id"].astype(str), reasons]).size().reset_index(name="n")
        for item, said, count in counted.itertuples(index=False):  # one row per distinct item and reason
            by_reason = self.dismissed.setdefault(str(item), {})
            key = str(said) if str(said) in by_reason or len(by_reason) < REASONS_PER_ITEM else "other"
            by_reason[key] = by_reason.get(key, 0) + int(count)

    async def dismissals(self) -> dict[str, dict[str, int]]:
        """Return item -> reason -> dismissals over every event logged so far."""
        await self.catch_up()
        return self.dismissed

    async def report(self, control: str | None, confidence: float) -> dict[str, Any]:
        """Return the report over every event logged so far; a control nobody was served falls back."""
        await self.catch_up()
        loop = asyncio.get_running_loop()
        if control is not None and control not in self.tally.arms:
            control = None
        return await loop.run_in_executor(REPORT_EXECUTOR, self._report, control, confidence)

    async def kpis(self, by: Period, control: str | None, confidence: float) -> dict[str, Any]:
        """Return the live KPI series and, per variant, placement and channel, the report's figures."""
        await self.catch_up()
        loop = asyncio.get_running_loop()
        if control is not None and control not in self.tally.arms:
            control = None
        return await loop.run_in_executor(REPORT_EXECUTOR, self._kpis, by, control, confidence)

    def _kpis(self, by: Period, control: str | None, confidence: float) -> dict[str, Any]:
        report = self._report(control, confidence)
        return {
            "series": self.shop.series(by),
            "control": report["control"],
            "by_variant": report["variants"],
            "by_placement": report["by_placement"],
            "by_channel": report["by_channel"],
        }

    def _report(self, control: str | None, confidence: float) -> dict[str, Any]:
        """Return the experiment report with its breakdowns by placement and channel."""
        found = self.tally.report(control, confidence)
        for by, tally in self.breakdowns.items():
            found[f"by_{by}"] = tally.report(None, confidence)["variants"] if tally.arms else {}
        return found
