"""The experiment report on hand-built event sequences, with every expected number computed by hand."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from itertools import count
from statistics import NormalDist, variance
from typing import Any

import pandas as pd
import pytest

from features.attribution import experiment_report

_ids: Iterator[int] = count()


def ev(
    user: str,
    kind: str,
    variant: str | None = "A",
    order: str | None = None,
    quantity: float | None = None,
    price: float | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One logged event; unset fields are None, as the service logs them."""
    return {
        "event_id": event_id or f"e{next(_ids)}",
        "user_id": user,
        "item_id": "i1",
        "type": kind,
        "timestamp": "2024-03-01T12:00:00Z",
        "order_id": order,
        "quantity": quantity,
        "price": price,
        "recommendation_id": None if variant is None else f"rec-{variant}",
        "variant": variant,
    }


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def two_variants() -> pd.DataFrame:
    """A: 4 users, 10 impressions, 3 clicks, 2 carts, order O1 = 2x10 + 1x5 = 25 (1 buyer).

    B: 5 users, 8 impressions, 4 clicks, 3 carts, orders O2 = 3x4 + 2x(price None -> 0) = 12 and
    O3 = 1x20 + (quantity None -> 1)x8 = 28, by two buyers: revenue 40.
    Unattributed (variant None): 4 events, one a purchase of 100 that must not count anywhere.
    """
    a = [ev(u, "impression") for u, n in (("a1", 3), ("a2", 3), ("a3", 2), ("a4", 2)) for _ in range(n)]
    a += [ev(u, "click") for u in ("a1", "a2", "a3")]
    a += [ev(u, "cart") for u in ("a1", "a2")]
    a += [ev("a1", "purchase", order="O1", quantity=2, price=10.0)]
    a += [ev("a1", "purchase", order="O1", quantity=1, price=5.0)]
    b = [ev(u, "impression", "B") for u in ("b1", "b2", "b3", "b4", "b5", "b1", "b2", "b3")]
    b += [ev(u, "click", "B") for u in ("b1", "b2", "b3", "b4")]
    b += [ev(u, "cart", "B") for u in ("b1", "b2", "b3")]
    b += [ev("b1", "purchase", "B", order="O2", quantity=3, price=4.0)]
    b += [ev("b1", "purchase", "B", order="O2", quantity=2, price=None)]
    b += [ev("b2", "purchase", "B", order="O3", quantity=1, price=20.0)]
    b += [ev("b2", "purchase", "B", order="O3", quantity=None, price=8.0)]
    ignored = [
        ev("a1", "impression", None),
        ev("x1", "purchase", None, order="O9", quantity=1, price=100.0),
        ev("b1", "click", None),
        ev("b5", "view", None),
    ]
    return frame(a + b + ignored)


def assert_plain_json(value: Any) -> None:
    """Only dict, list, str, int, float, bool and None, recursively: no numpy scalars, no NaN."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert value is None or type(value) in (str, int, float, bool), (value, type(value))
        if type(value) is float:
            assert math.isfinite(value)


def test_every_metric_of_both_variants_matches_the_hand_computed_values():
    report = experiment_report(two_variants())

    assert report["control"] == "A"
    assert report["method"] == "normal"
    assert report["confidence"] == 0.95
    a, b = report["variants"]["A"], report["variants"]["B"]
    assert {k: v for k, v in a.items() if k != "vs_control"} == {
        "users": 4,
        "purchasers": 1,
        "purchase_frequency": 1 / 1,
        "impressions": 10,
        "clicks": 3,
        "ctr": 3 / 10,
        "add_to_carts": 2,
        "orders": 1,
        "revenue": 25.0,  # 2*10 + 1*5
        "conversion_rate": 1 / 4,
        "aov": 25.0 / 1,
        "revenue_per_1000_impressions": 1000 * 25.0 / 10,  # 2500
        "revenue_per_user": 25.0 / 4,  # 6.25
    }
    assert {k: v for k, v in b.items() if k != "vs_control"} == {
        "users": 5,
        "purchasers": 2,
        "purchase_frequency": 2 / 2,
        "impressions": 8,
        "clicks": 4,
        "ctr": 4 / 8,
        "add_to_carts": 3,
        "orders": 2,
        "revenue": 40.0,  # (3*4 + 2*0) + (1*20 + 1*8) = 12 + 28
        "conversion_rate": 2 / 5,
        "aov": 40.0 / 2,  # 20
        "revenue_per_1000_impressions": 1000 * 40.0 / 8,  # 5000
        "revenue_per_user": 40.0 / 5,  # 8
    }
    assert a["vs_control"] is None
    vs = b["vs_control"]
    assert vs["ctr"]["diff"] == 4 / 8 - 3 / 10
    assert vs["ctr"]["relative"] == pytest.approx((4 / 8 - 3 / 10) / (3 / 10))  # +66.7%
    assert vs["conversion_rate"]["diff"] == 2 / 5 - 1 / 4
    assert vs["conversion_rate"]["relative"] == pytest.approx(0.15 / 0.25)
    assert vs["aov"] == {"diff": 20.0 - 25.0, "ci_low": None, "ci_high": None, "relative": -5.0 / 25.0}
    assert vs["revenue_per_user"]["diff"] == 8.0 - 6.25
    assert vs["revenue_per_user"]["relative"] == 1.75 / 6.25


def test_unattributed_events_are_ignored_and_counted():
    report = experiment_report(two_variants())

    assert report["events_attributed"] == 17 + 19  # A: 10+3+2+2; B: 8+4+3+4
    assert report["events_ignored"] == 4
    assert set(report["variants"]) == {"A", "B"}
    assert report["variants"]["A"]["impressions"] == 10  # not 11: a1's unattributed impression
    assert report["variants"]["B"]["clicks"] == 4


@pytest.mark.parametrize("confidence", [0.95, 0.80])
def test_intervals_are_the_normal_approximation_of_the_documented_formulas(confidence: float):
    report = experiment_report(two_variants(), confidence=confidence)

    z = NormalDist().inv_cdf((1 + confidence) / 2)  # 1.95996 at 95%
    vs = report["variants"]["B"]["vs_control"]
    # ctr, per impression: p1 = 4/8 over n1 = 8, p0 = 3/10 over n0 = 10, unpooled.
    se = math.sqrt(0.5 * 0.5 / 8 + 0.3 * 0.7 / 10)
    assert vs["ctr"]["ci_low"] == pytest.approx(0.2 - z * se)
    assert vs["ctr"]["ci_high"] == pytest.approx(0.2 + z * se)
    # conversion, per user: p1 = 2/5 over 5 users, p0 = 1/4 over 4 users.
    se = math.sqrt(0.4 * 0.6 / 5 + 0.25 * 0.75 / 4)
    assert vs["conversion_rate"]["ci_low"] == pytest.approx(0.15 - z * se)
    assert vs["conversion_rate"]["ci_high"] == pytest.approx(0.15 + z * se)
    # revenue per user, Welch: A = [25, 0, 0, 0] (variance 156.25), B = [12, 28, 0, 0, 0] (variance 152).
    assert variance([25, 0, 0, 0]) == 156.25 and variance([12, 28, 0, 0, 0]) == 152
    se = math.sqrt(156.25 / 4 + 152 / 5)
    assert vs["revenue_per_user"]["ci_low"] == pytest.approx(1.75 - z * se)
    assert vs["revenue_per_user"]["ci_high"] == pytest.approx(1.75 + z * se)


def test_aov_interval_uses_welch_over_order_values():
    rows = [ev("a1", "impression"), ev("b1", "impression", "B")]
    rows += [ev(f"a{i}", "purchase", order=f"OA{i}", price=p) for i, p in enumerate((10.0, 20.0, 30.0))]
    rows += [ev(f"b{i}", "purchase", "B", order=f"OB{i}", price=p) for i, p in enumerate((30.0, 50.0))]

    vs = experiment_report(frame(rows), control="A")["variants"]["B"]["vs_control"]["aov"]

    # A orders [10, 20, 30]: mean 20, variance 100; B orders [30, 50]: mean 40, variance 200.
    se = math.sqrt(100 / 3 + 200 / 2)
    z = NormalDist().inv_cdf(0.975)
    assert vs["diff"] == 20.0
    assert vs["relative"] == 1.0
    assert vs["ci_low"] == pytest.approx(20 - z * se)
    assert vs["ci_high"] == pytest.approx(20 + z * se)


def test_control_defaults_to_the_variant_with_the_most_impressions():
    rows = [ev("u1", "impression", "a"), ev("u2", "impression", "b"), ev("u3", "impression", "b")]

    report = experiment_report(frame(rows))

    assert report["control"] == "b"  # 2 impressions against 1
    assert report["variants"]["b"]["vs_control"] is None
    assert report["variants"]["a"]["vs_control"]["ctr"]["diff"] == 0.0


def test_control_default_breaks_an_impression_tie_by_name():
    rows = [ev("u1", "impression", "zeta"), ev("u2", "impression", "alpha")]

    assert experiment_report(frame(rows))["control"] == "alpha"


def test_explicit_control_is_reported_and_compared_against():
    report = experiment_report(two_variants(), control="B")

    assert report["control"] == "B"
    assert report["variants"]["B"]["vs_control"] is None
    vs = report["variants"]["A"]["vs_control"]
    assert vs["ctr"]["diff"] == 3 / 10 - 4 / 8
    assert vs["aov"]["diff"] == 25.0 - 20.0
    assert vs["aov"]["relative"] == 5.0 / 20.0


def test_an_unknown_control_is_rejected():
    with pytest.raises(ValueError, match="'C' has no attributed events"):
        experiment_report(two_variants(), control="C")


def test_a_purchase_without_order_id_counts_as_its_own_order():
    rows = [
        ev("u1", "purchase", price=10.0, event_id="p1"),  # own order, keyed by event id p1
        ev("u1", "purchase", price=6.0, event_id="p2"),  # own order p2
        ev("u1", "purchase", order="p1", price=3.0),  # order "p1": not merged with event p1
        ev("u1", "purchase", order="p1", quantity=2, price=0.5),
    ]

    a = experiment_report(frame(rows))["variants"]["A"]

    assert a["orders"] == 3
    assert a["revenue"] == 10.0 + 6.0 + (3.0 + 2 * 0.5)
    assert a["aov"] == 20.0 / 3
    assert a["purchasers"] == 1


def test_zero_impressions_leave_ctr_and_revenue_per_impression_undefined():
    rows = [ev("a1", "impression"), ev("a1", "click")]
    rows += [ev("b1", "purchase", "B", order="O1", price=9.0)]  # B was never shown an impression

    report = experiment_report(frame(rows))

    b = report["variants"]["B"]
    assert b["impressions"] == 0
    assert b["ctr"] is None
    assert b["revenue_per_1000_impressions"] is None
    assert b["vs_control"]["ctr"] == {"diff": None, "ci_low": None, "ci_high": None, "relative": None}
    # A has no orders, so its aov and every aov comparison are undefined too.
    assert report["variants"]["A"]["aov"] is None
    assert b["vs_control"]["aov"]["diff"] is None
    # revenue per user: B 9/1 against A 0/1; relative to zero is undefined.
    assert b["vs_control"]["revenue_per_user"]["diff"] == 9.0
    assert b["vs_control"]["revenue_per_user"]["relative"] is None
    json.dumps(report, allow_nan=False)


def clear_cut() -> pd.DataFrame:
    """A: 30 users, 20 buyers of orders 10, 11, 12, ...; B: 20 users all buying 30, 31, 32, ...: +20."""
    rows = [ev(f"a{i}", "impression") for i in range(30)]
    rows += [ev(f"a{i}", "purchase", order=f"OA{i}", price=10.0 + i % 3) for i in range(20)]
    rows += [ev(f"b{i}", "impression", "B") for i in range(20)]
    rows += [ev(f"b{i}", "purchase", "B", order=f"OB{i}", price=30.0 + i % 3) for i in range(20)]
    return frame(rows)


def test_bootstrap_is_deterministic_by_seed_and_brackets_the_point_difference():
    events = clear_cut()

    first = experiment_report(events, n_bootstrap=500, seed=7)
    again = experiment_report(events, n_bootstrap=500, seed=7)
    other = experiment_report(events, n_bootstrap=500, seed=8)

    assert first == again
    assert first["method"] == "bootstrap"
    vs = first["variants"]["B"]["vs_control"]
    assert other["variants"]["B"]["vs_control"]["revenue_per_user"] != vs["revenue_per_user"]
    # aov: A (7*10 + 7*11 + 6*12) / 20 = 10.95, B 30.95: +20, every resample far from 0.
    assert vs["aov"]["diff"] == pytest.approx(20.0)
    assert 0 < vs["aov"]["ci_low"] < vs["aov"]["diff"] < vs["aov"]["ci_high"]
    # revenue per user: A 219 / 30 = 7.3 (10 users bought nothing), B 619 / 20 = 30.95.
    assert vs["revenue_per_user"]["diff"] == pytest.approx(30.95 - 7.3)
    assert 0 < vs["revenue_per_user"]["ci_low"] < vs["revenue_per_user"]["diff"]
    assert vs["revenue_per_user"]["diff"] < vs["revenue_per_user"]["ci_high"]


def test_bootstrap_leaves_the_proportion_intervals_normal():
    events = clear_cut()

    normal = experiment_report(events)["variants"]["B"]["vs_control"]
    boot = experiment_report(events, n_bootstrap=200)["variants"]["B"]["vs_control"]

    assert normal["ctr"] == boot["ctr"]
    assert normal["conversion_rate"] == boot["conversion_rate"]
    assert normal["aov"]["diff"] == boot["aov"]["diff"]
    assert normal["aov"]["ci_low"] != boot["aov"]["ci_low"]


def test_report_is_plain_json():
    for report in (experiment_report(two_variants()), experiment_report(clear_cut(), n_bootstrap=50)):
        assert_plain_json(report)
        assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_no_attributed_events_give_an_empty_report():
    report = experiment_report(frame([ev("u1", "impression", None)]))

    assert report == {
        "control": None,
        "confidence": 0.95,
        "method": "normal",
        "variants": {},
        "events_attributed": 0,
        "events_ignored": 1,
    }


def test_pandas_timestamps_are_accepted_and_a_missing_column_is_rejected():
    events = two_variants().assign(timestamp=pd.Timestamp("2024-03-01", tz="UTC"))

    assert experiment_report(events)["variants"]["B"]["revenue"] == 40.0
    with pytest.raises(ValueError, match="variant"):
        experiment_report(events.drop(columns="variant"))


def test_h8_a_log_folded_in_batches_reports_as_the_whole_log_at_once():
    from features.attribution import Tally

    rows = [
        ("e1", "u1", "impression", None, None, None, "A"),
        ("e2", "u1", "purchase", "o1", 1, 10.0, "A"),
        ("e3", "u2", "impression", None, None, None, "B"),
        ("e4", "u1", "purchase", "o1", 2, 5.0, "A"),  # the same order, in a later batch
        ("e5", "u2", "purchase", "o2", 1, 7.0, "B"),
        ("e6", "u3", "purchase", "o3", 1, 3.0, "A"),
        ("e7", "u4", "click", None, None, None, "B"),
        ("e8", "u5", "purchase", "o4", 1, 4.0, "B"),
    ]
    columns = ["event_id", "user_id", "type", "order_id", "quantity", "price", "variant"]
    whole = pd.DataFrame(rows, columns=columns)
    tally = Tally()
    for start in range(0, len(rows), 3):
        tally.add(whole.iloc[start : start + 3])
    assert tally.report("A") == experiment_report(whole, "A")
    assert tally.report("A")["variants"]["A"]["orders"] == 2  # o1 once, with both lines
    assert tally.report("A")["variants"]["A"]["aov"] == (20.0 + 3.0) / 2
