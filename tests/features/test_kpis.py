"""The shop's KPIs per period, checked against a hand count on a small store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.dataset import load_catalog
from features.io import resolve_format
from features.kpis import history_kpis, period_labels
from features.validate import load_events

# Two months of a tiny shop. u3's February order is returned in full; u1 returns one of three b's.
EVENTS = """user_id,item_id,timestamp,event_type,order_id,quantity,price
u1,a,2026-01-03T10:00:00Z,view,,,
u1,a,2026-01-05T10:00:00Z,purchase,o1,2,10
u1,b,2026-01-05T10:00:00Z,purchase,o1,1,5
u2,b,2026-01-10T10:00:00Z,view,,,
u3,a,2026-01-12T10:00:00Z,purchase,o2,1,8
,b,2026-01-20T10:00:00Z,purchase,o3,4,5
u1,b,2026-02-02T10:00:00Z,purchase,o4,3,5
u1,b,2026-02-10T10:00:00Z,purchase,o5,-1,5
u2,c,2026-02-15T10:00:00Z,purchase,o6,1,30
u4,c,2026-02-20T10:00:00Z,view,,,
u3,d,2026-02-21T10:00:00Z,purchase,o7,1,12
u3,d,2026-02-22T10:00:00Z,purchase,o8,-1,12
"""
ITEMS = """item_id,price,cost
a,10,6
b,5,3
c,30,20
d,12,
"""


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(ITEMS)
    return tmp_path / "events.csv", tmp_path / "items.csv"


def _rows(events: Path, items: Path | None) -> dict[str, dict[str, object]]:
    result = load_events(events, resolve_format())
    catalog = load_catalog(items) if items is not None else None
    series = history_kpis(result.events, result.anonymous, catalog).series("month")
    return {row["period"]: row for row in series["rows"]}


def test_each_monthly_kpi_matches_a_hand_count(store: tuple[Path, Path]) -> None:
    rows = _rows(store[0], None)
    assert list(rows) == ["2026-01", "2026-02", "all"]
    jan, feb, every = rows["2026-01"], rows["2026-02"], rows["all"]
    # January: users u1 u2 u3; customers u1 u3; orders o1 (25) o2 (8) o3 (20, no customer id).
    assert (jan["users"], jan["customers"], jan["orders"], jan["revenue"]) == (3, 2, 3, 53.0)
    assert jan["conversion_rate"] == pytest.approx(2 / 3) and jan["aov"] == pytest.approx(53 / 3)
    assert jan["purchase_frequency"] == pytest.approx(2 / 2)
    assert jan["discount_rate"] == pytest.approx(8 / 53)  # o2 sold a at 8, below its list price 10
    # February: o4 is 3 b's less the one returned (10); o6 is 30; o7 was returned in full.
    assert (feb["users"], feb["customers"], feb["orders"], feb["revenue"]) == (3, 2, 2, 40.0)
    assert feb["aov"] == pytest.approx(20.0) and feb["discount_rate"] == 0.0
    # All: four users, three customers, five orders, four of them by customers.
    assert (every["users"], every["customers"], every["orders"], every["revenue"]) == (4, 3, 5, 93.0)
    assert every["conversion_rate"] == pytest.approx(3 / 4) and every["aov"] == pytest.approx(93 / 5)
    assert every["purchase_frequency"] == pytest.approx(4 / 3)


def test_with_costs_known_the_discount_rate_is_the_margin_over_revenue(store: tuple[Path, Path]) -> None:
    rows = _rows(*store)
    # January: a (10-6)x2 + b (5-3)x1 + a (8-6)x1 + b (5-3)x4 = 20 over 53; February: 4 + 10 over 40.
    assert rows["2026-01"]["discount_rate"] == pytest.approx(20 / 53)
    assert rows["2026-02"]["discount_rate"] == pytest.approx(14 / 40)


def test_weeks_start_on_monday_and_months_are_calendar_months() -> None:
    stamps = pd.Series(
        pd.to_datetime(["2026-01-03T23:00:00Z", "2026-01-05T00:00:00Z", "2026-02-01T00:00:00Z"])
    )
    assert period_labels(stamps, "week").tolist() == ["2025-12-29", "2026-01-05", "2026-01-26"]
    assert period_labels(stamps, "month").tolist() == ["2026-01", "2026-01", "2026-02"]
