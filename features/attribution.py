"""A/B experiment report over live events attributed to the variant that served a recommendation.

Only events with a non-null ``variant`` count (``events_attributed``); the rest are
``events_ignored``. The variant is attached at ingest, so no attribution window is applied here and
``timestamp`` is not used. Per variant ``v``, over its attributed events:

- ``users`` = distinct non-null ``user_id``; ``purchasers`` = distinct users with a purchase;
- ``impressions``, ``clicks``, ``add_to_carts`` = events of type impression, click, cart;
- purchase line value = ``price * quantity`` (``price`` None -> 0, ``quantity`` None -> 1);
  order key = ``order_id``, or the purchase's ``event_id`` when ``order_id`` is None (its own order);
  ``orders`` = distinct order keys; order value = sum of its attributed line values;
- ``revenue`` = sum of line values; ``ctr`` = clicks / impressions;
  ``conversion_rate`` = purchasers / users; ``aov`` = revenue / orders (the mean order value);
  ``purchase_frequency`` = orders with a user / purchasers;
  ``revenue_per_1000_impressions`` = 1000 * revenue / impressions;
  ``revenue_per_user`` = revenue / users (the mean of per-user revenue, 0 for users who did not buy).

``control`` defaults to the variant with the most impressions (ties: the first name in sort order).
For every other variant and each metric ``m`` in ctr, conversion_rate, aov, revenue_per_user:
``diff = m(v) - m(control)``, ``relative = diff / m(control)``, and a two-sided interval at
``confidence`` with ``z = Phi^-1((1 + confidence) / 2)``:

- ctr (per impression, ``n`` = impressions) and conversion_rate (per user, ``n`` = users): unpooled
  two-proportion ``se = sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0)`` (``p (1 - p)`` clipped at 0
  when clicks exceed impressions); interval ``diff -/+ z * se``;
- aov (order values) and revenue_per_user (per-user revenue with zeros): Welch
  ``se = sqrt(s1^2 / n1 + s0^2 / n0)`` with sample variances (ddof 1; needs ``n >= 2`` per arm);
  interval ``diff -/+ z * se``. With ``n_bootstrap > 0`` (``method`` "bootstrap") these two use a
  percentile bootstrap instead: each arm's orders / users are resampled with replacement
  ``n_bootstrap`` times (numpy ``default_rng(seed)``, variants in sort order), and the interval is
  the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the replicate differences.

Any ratio with a zero denominator, and any interval that cannot be formed, is None (JSON null).
An explicit ``control`` without attributed events, or a missing input column, raises ValueError.
The output holds plain Python types only, so ``json.dumps`` takes it as is.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from features.errors import InvalidParameter
from features.schema import REPORTED, LiveEventType

__all__ = ["Arm", "Tally", "experiment_report"]

logger = logging.getLogger(__name__)

_COLUMNS = ("event_id", "user_id", "type", "order_id", "quantity", "price", "variant")
_COUNTED = {counter: kind.value for counter, kind in REPORTED.items()}
_PROPORTIONS = {"ctr": "impressions", "conversion_rate": "users"}  # metric -> its sample size
_MEANS = ("aov", "revenue_per_user")
_CHUNK = 1 << 22  # bootstrap indices (replicates x sample size) drawn at once


@dataclass
class Arm:
    """One variant's running sums: counts, distinct users, and each order's and user's spend."""

    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    revenue: float = 0.0
    users: set[str] = field(default_factory=set)
    order_values: dict[str, float] = field(default_factory=dict)
    user_spend: dict[str, float] = field(default_factory=dict)
    order_sumsq: float = 0.0  # sum of squared order values, for Welch's variance
    user_sumsq: float = 0.0  # sum of squared per-user spend (users without a purchase add 0)
    user_total: float = 0.0  # spend of purchases with a user
    customer_orders: set[str] = field(default_factory=set)  # order keys of purchases with a user
    costed_revenue: float = 0.0  # line values of items with a known cost (a ``cost`` column)
    margin: float = 0.0  # sum of (price - cost) * quantity over those lines
    listed_revenue: float = 0.0  # line values of items with a known list price (a ``list_price`` column)
    below_list: float = 0.0  # line values sold below the list price

    def totals(self) -> dict[str, Any]:
        """Return the counts the metrics are ratios of."""
        return {
            "impressions": self.impressions, "clicks": self.clicks, "add_to_carts": self.add_to_carts,
            "users": len(self.users), "orders": len(self.order_values),
            "purchasers": len(self.user_spend), "revenue": self.revenue,
            "customer_orders": len(self.customer_orders),
        }  # fmt: skip

    def moments(self, metric: str) -> tuple[int, float, float]:
        """Return (n, sum, sum of squares) of the values a mean metric averages."""
        if metric == "aov":
            return len(self.order_values), self.revenue, self.order_sumsq
        return len(self.users), self.user_total, self.user_sumsq

    def sample(self, metric: str) -> np.ndarray:
        """Return the values a mean metric averages, in key order (per order, or per user with zeros)."""
        if metric == "aov":
            return np.array([self.order_values[k] for k in sorted(self.order_values)], dtype=np.float64)
        return np.array([self.user_spend.get(u, 0.0) for u in sorted(self.users)], dtype=np.float64)


@dataclass
class Tally:
    """The report's running sums over every event folded so far; ``add`` folds more, in any batches.

    Folding a log in pieces gives the same report as folding it at once: an order whose lines
    arrive in several batches is one order, its value their sum. ``by`` names the column the arms
    are (``variant`` for the experiment; ``placement`` or ``channel`` for those breakdowns).
    """

    arms: dict[str, Arm] = field(default_factory=dict)
    attributed: int = 0
    ignored: int = 0
    by: str = "variant"

    def add(self, events: pd.DataFrame) -> None:
        """Fold a frame of events (the report's input columns) into the sums."""
        if self.by != "variant":
            if self.by not in events.columns:
                raise InvalidParameter(f"events lack the column {self.by!r}")
            events = events.assign(variant=events[self.by])
        missing = [c for c in _COLUMNS if c not in events.columns]
        if missing:
            raise InvalidParameter(f"events lack columns {missing}")
        df = events.loc[events["variant"].notna(), list(_COLUMNS)]
        self.attributed += len(df)
        self.ignored += len(events) - len(df)
        if df.empty:
            return
        df = df.assign(variant=df["variant"].astype(str))
        flags = pd.DataFrame({col: df["type"].eq(kind) for col, kind in _COUNTED.items()})
        counts = flags.groupby(df["variant"]).sum()
        buys = df[df["type"].eq(LiveEventType.PURCHASE.value)]
        value = pd.to_numeric(buys["price"]).astype(np.float64).fillna(0.0) * pd.to_numeric(
            buys["quantity"]
        ).astype(np.float64).fillna(1.0)
        has_order = buys["order_id"].notna()
        key = ("o:" + buys["order_id"].astype(str)).where(has_order, "e:" + buys["event_id"].astype(str))
        by_order = value.groupby([buys["variant"], key]).sum()
        by_user = value.groupby(
            [buys["variant"], buys["user_id"].astype(str).where(buys["user_id"].notna())]
        ).sum()
        self._add_prices(events.loc[buys.index], buys, value)
        customer = buys["user_id"].notna()
        for variant, keys in key[customer].groupby(buys.loc[customer, "variant"]):
            self.arms.setdefault(str(variant), Arm()).customer_orders.update(keys.tolist())
        users = (
            df.loc[df["user_id"].notna(), ["variant", "user_id"]]
            .drop_duplicates()
            .groupby("variant")["user_id"]
        )
        for variant, row in counts.iterrows():
            arm = self.arms.setdefault(str(variant), Arm())
            arm.impressions += int(row["impressions"])
            arm.clicks += int(row["clicks"])
            arm.add_to_carts += int(row["add_to_carts"])
        for variant, ids in users:
            self.arms[str(variant)].users.update(ids.astype(str).tolist())
        for variant, part in by_order.groupby(level=0):
            arm = self.arms[str(variant)]
            orders = [str(k) for k in part.index.get_level_values(1)]
            arm.order_sumsq += _accumulate(arm.order_values, orders, part.tolist())
            arm.revenue += float(part.sum())
        for variant, part in by_user.groupby(level=0):
            arm = self.arms[str(variant)]
            spenders = [str(k) for k in part.index.get_level_values(1)]
            arm.user_sumsq += _accumulate(arm.user_spend, spenders, part.tolist())
            arm.user_total += float(part.sum())

    def _add_prices(self, lines: pd.DataFrame, buys: pd.DataFrame, value: pd.Series) -> None:
        """Add the margin and below-list sums of purchase lines that carry ``cost`` or ``list_price``."""
        price = pd.to_numeric(buys["price"]).astype(np.float64)
        quantity = pd.to_numeric(buys["quantity"]).astype(np.float64).fillna(1.0)
        parts: dict[str, pd.Series] = {}
        if "cost" in lines.columns:
            cost = pd.to_numeric(lines["cost"]).astype(np.float64)
            costed = cost.notna() & price.notna()
            parts["costed_revenue"] = value.where(costed, 0.0)
            parts["margin"] = ((price - cost) * quantity).where(costed, 0.0)
        if "list_price" in lines.columns:
            listed_price = pd.to_numeric(lines["list_price"]).astype(np.float64)
            listed = listed_price.notna() & price.notna()
            parts["listed_revenue"] = value.where(listed, 0.0)
            parts["below_list"] = value.where(listed & (price < listed_price - 1e-9), 0.0)
        if not parts:
            return
        sums = pd.DataFrame(parts).groupby(buys["variant"]).sum()
        for variant, row in sums.iterrows():
            arm = self.arms.setdefault(str(variant), Arm())
            for name, total in row.items():
                setattr(arm, str(name), getattr(arm, str(name)) + float(total))

    def report(
        self, control: str | None = None, confidence: float = 0.95, n_bootstrap: int = 0, seed: int = 0
    ) -> dict[str, Any]:
        """Return per-variant metrics and their differences to the control as a JSON-ready dict."""
        if not 0.0 < confidence < 1.0:
            raise InvalidParameter(f"confidence must lie in (0, 1), got {confidence}")
        if n_bootstrap < 0:
            raise InvalidParameter(f"n_bootstrap must be >= 0, got {n_bootstrap}")
        totals = {name: arm.totals() for name, arm in self.arms.items()}
        names = sorted(totals)
        if control is None and names:
            control = max(names, key=lambda v: totals[v]["impressions"])  # max keeps the first of ties
        elif control is not None and control not in names:
            raise InvalidParameter(f"control {control!r} has no attributed events; variants seen: {names}")
        metrics = {name: _metrics(totals[name]) for name in names}
        boots = _bootstraps(self.arms, names, n_bootstrap, seed) if n_bootstrap > 0 else None
        z = -NormalDist().inv_cdf((1.0 - confidence) / 2.0)  # the lower tail: no rounding to p = 1
        variants: dict[str, Any] = {}
        for name in names:
            vs = None
            if control is not None and name != control:
                vs = {
                    m: _compare(m, name, control, totals, metrics, self.arms, boots, z, confidence)
                    for m in (*_PROPORTIONS, *_MEANS)
                }
            variants[name] = {**metrics[name], "vs_control": vs}
        logger.debug(
            "experiment report: %d variants, control %s, %d events", len(names), control, self.attributed
        )
        return {
            "control": control,
            "confidence": float(confidence),
            "method": "bootstrap" if n_bootstrap > 0 else "normal",
            "variants": variants,
            "events_attributed": self.attributed,
            "events_ignored": self.ignored,
        }


def experiment_report(
    events: pd.DataFrame,
    control: str | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Return per-variant metrics and their differences to the control as a JSON-ready dict."""
    tally = Tally()
    tally.add(events)
    return tally.report(control, confidence, n_bootstrap, seed)


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    """Return one variant's counts and ratios as plain Python numbers."""
    users, purchasers, impressions = int(row["users"]), int(row["purchasers"]), int(row["impressions"])
    clicks, orders, revenue = int(row["clicks"]), int(row["orders"]), float(row["revenue"])
    return {
        "users": users,
        "purchasers": purchasers,
        "purchase_frequency": _ratio(int(row["customer_orders"]), purchasers),
        "impressions": impressions,
        "clicks": clicks,
        "ctr": _ratio(clicks, impressions),
        "add_to_carts": int(row["add_to_carts"]),
        "orders": orders,
        "revenue": revenue,
        "conversion_rate": _ratio(purchasers, users),
        "aov": _ratio(revenue, orders),
        "revenue_per_1000_impressions": _ratio(1000.0 * revenue, impressions),
        "revenue_per_user": _ratio(revenue, users),
    }


def _compare(
    metric: str,
    name: str,
    control: str,
    totals: dict[str, dict[str, Any]],
    metrics: dict[str, dict[str, Any]],
    arms: dict[str, Arm],
    boots: dict[str, dict[str, np.ndarray | None]] | None,
    z: float,
    confidence: float,
) -> dict[str, float | None]:
    """Return the difference of one metric to the control with its interval and relative change."""
    value, base = metrics[name][metric], metrics[control][metric]
    if value is None or base is None:
        return {"diff": None, "ci_low": None, "ci_high": None, "relative": None}
    diff = value - base
    low = high = None
    if metric in _PROPORTIONS:
        den = _PROPORTIONS[metric]
        n1, n0 = int(totals[name][den]), int(totals[control][den])
        var = max(value * (1.0 - value), 0.0) / n1 + max(base * (1.0 - base), 0.0) / n0
        low, high = diff - z * math.sqrt(var), diff + z * math.sqrt(var)
    elif boots is not None:
        b1, b0 = boots[metric][name], boots[metric][control]
        if b1 is not None and b0 is not None:
            tail = (1.0 - confidence) / 2.0
            low, high = (float(q) for q in np.quantile(b1 - b0, [tail, 1.0 - tail]))
    else:
        (n1, s1, q1), (n0, s0, q0) = arms[name].moments(metric), arms[control].moments(metric)
        if n1 >= 2 and n0 >= 2:
            se = math.sqrt(_variance(n1, s1, q1) / n1 + _variance(n0, s0, q0) / n0)
            low, high = diff - z * se, diff + z * se
    return {
        "diff": _finite(diff),
        "ci_low": _finite(low),
        "ci_high": _finite(high),
        "relative": _ratio(diff, base),
    }


def _accumulate(values: dict[str, float], keys: list[str], deltas: list[float]) -> float:
    """Add each delta to its key's value; return the change of the values' sum of squares."""
    change = 0.0
    for key, delta in zip(keys, deltas, strict=True):
        old = values.get(key, 0.0)
        values[key] = old + delta
        change += (old + delta) ** 2 - old * old
    return change


def _variance(n: int, total: float, squares: float) -> float:
    """Return the sample variance (ddof 1) of ``n`` values from their sum and sum of squares."""
    return max(squares - total * total / n, 0.0) / (n - 1)


def _bootstraps(
    arms: dict[str, Arm], names: list[str], n: int, seed: int
) -> dict[str, dict[str, np.ndarray | None]]:
    """Return, per mean metric and variant, ``n`` bootstrap replicate means (None without values)."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, np.ndarray | None]] = {}
    for metric in _MEANS:
        out[metric] = {}
        for name in names:
            x = arms[name].sample(metric)
            if len(x) == 0:
                out[metric][name] = None
                continue
            step = max(1, _CHUNK // len(x))  # replicates per draw, to bound memory
            draws = [rng.integers(0, len(x), (min(step, n - i), len(x))) for i in range(0, n, step)]
            out[metric][name] = np.concatenate([x[idx].mean(axis=1) for idx in draws])
    return out


def _ratio(num: float, den: float) -> float | None:
    """Return ``num / den`` as a float, or None when the denominator is zero or the result not finite."""
    return _finite(num / den) if den else None


def _finite(x: float | None) -> float | None:
    """Return ``x`` as a plain float, or None when it is missing, NaN or infinite."""
    return float(x) if x is not None and math.isfinite(x) else None
