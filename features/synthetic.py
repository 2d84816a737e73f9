"""Generate a believable synthetic online shop whose planted structure is documented here.

Everything is deterministic given ``seed`` and fully vectorised (numpy, no per-event loops).

* Catalog: the 16 categories of :data:`CATEGORIES` get items in proportion to their share; item
  ``k`` of a category is named ``"<stem> <k>"`` (``"Phone 17"``, ``"Phone case 17"``). Prices are
  log-normal around the category median (2 decimals, > 0); an item costs the shop 45-85% of its
  price (uniform; drawn from its own stream, so costs change no event). About 95% of items are in
  stock; anchors and complements always are. Item ids are shuffled, so they do not reveal the category.
* Popularity: within a category, item weights follow Zipf ``rank ** -1.1``. The rank (1 = most
  popular) is random and recorded in ``PlantedTruth.item_rank``.
* Users: activity is heavy-tailed (log-normal session counts). Each user has a primary favourite
  category (``PlantedTruth.user_category``, drawn by catalog share) and half of them a second one
  (``user_category2``, ``""`` if none). A view's category is the primary favourite with p=0.6, the
  second favourite (the primary if none) with p=0.25 and any category by share with p=0.15; the item
  is then drawn by popularity. So most of a user's events fall in ``user_category``.
* Sessions: 6 views on average (geometric), 10 s + Exp(90 s) apart, starting over ``days`` days from
  ``start`` (UTC) with an evening-peaked daily profile and 30% busier weekends. 30% of sessions are
  shopping sessions (cart p=0.5, purchase given cart p=0.8); the rest browse (0.15 and 0.1).
  Out-of-stock items are viewed but never carted.
* Funnel: a cart comes 30 s-5 min after its view, with quantity 1 (p=0.85) or 2-5. All purchases of
  a session form one order, one row per item: same ``order_id``, user and timestamp, 1-5 min after
  the order's last cart, with the cart's quantity. Every purchase therefore has a view and a cart of
  the same (user, item) before it. Order ids are numbered in time order, from 1.
* Complements: ~5% of items are anchors in phones, laptops, coffee_gear and cameras (drawn by
  popularity). Anchor ``"<stem> <k>"`` is paired with item ``k`` of its companion category (phone
  -> phone case, coffee machine -> espresso beans, ...). These pairs are in
  ``PlantedTruth.complements`` as ``(anchor, complement)`` rows. When an anchor is bought, with
  p=:data:`COMPLEMENT_PROB` the complement is viewed, carted and added to the same order.
* Volume: ``events_per_user`` (default 50) sets the expected number of events per user. The default
  store has about 250k events. Timestamps are clamped to the last second of the window.
* Files (:func:`write_store`): ``events.csv`` and ``items.csv`` with a header. Timestamps are UTC
  written as ``YYYY-MM-DD HH:MM:SS`` with no zone suffix, and view and cart rows have an empty
  ``order_id`` field. ``truth.json`` holds ``complements``, ``user_category``, ``user_category2``,
  ``item_rank`` and ``complement_prob``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from features.errors import InvalidParameter
from features.schema import EventType

__all__ = [
    "CATEGORIES",
    "COMPLEMENT_PROB",
    "PlantedTruth",
    "SyntheticStore",
    "generate_store",
    "write_store",
]

logger = logging.getLogger(__name__)

#: (category, item name stem, share of catalog and traffic, median price, log-price sigma,
#: companion category of its anchors or "").
CATEGORIES: Final[tuple[tuple[str, str, float, float, float, str], ...]] = (
    ("phones", "Phone", 0.06, 450.0, 0.5, "phone_accessories"),
    ("phone_accessories", "Phone case", 0.08, 19.0, 0.4, ""),
    ("laptops", "Laptop", 0.05, 950.0, 0.4, "laptop_accessories"),
    ("laptop_accessories", "Laptop sleeve", 0.06, 29.0, 0.4, ""),
    ("coffee_gear", "Coffee machine", 0.05, 240.0, 0.6, "coffee"),
    ("coffee", "Espresso beans", 0.07, 14.0, 0.3, ""),
    ("cameras", "Camera", 0.04, 620.0, 0.5, "camera_accessories"),
    ("camera_accessories", "Memory card", 0.05, 24.0, 0.5, ""),
    ("books", "Book", 0.12, 16.0, 0.4, ""),
    ("toys", "Toy", 0.07, 25.0, 0.6, ""),
    ("kitchen", "Frying pan", 0.06, 35.0, 0.5, ""),
    ("beauty", "Shampoo", 0.06, 9.0, 0.4, ""),
    ("sports", "Running shoes", 0.06, 85.0, 0.4, ""),
    ("garden", "Garden hose", 0.05, 30.0, 0.5, ""),
    ("pet_supplies", "Dog food", 0.06, 22.0, 0.4, ""),
    ("clothing", "T-shirt", 0.06, 20.0, 0.4, ""),
)
#: Probability that a bought anchor brings its complement into the same order.
COMPLEMENT_PROB: Final[float] = 0.5
_ANCHOR_SHARE: Final[float] = 0.05
_ZIPF: Final[float] = 1.1
_SESSION_VIEWS: Final[float] = 6.0
_EVENTS_PER_VIEW: Final[float] = 1.39  # 1 view + ~0.25 carts + ~0.13 purchases + complements
_HOUR = np.arange(24)
#: Relative session starts per hour of day (UTC): quiet nights, a lunch bump, an evening peak.
_HOURLY: Final[np.ndarray] = (
    0.3 + 3 * np.exp(-(((_HOUR - 12) / 3.5) ** 2)) + 6 * np.exp(-(((_HOUR - 20) / 2.5) ** 2))
)


@dataclass(frozen=True, eq=False)
class PlantedTruth:
    """What the generator planted, as aligned numpy unicode/int arrays."""

    complements: np.ndarray  # (n_pairs, 2) item ids: anchor, complement
    user_ids: np.ndarray
    user_category: np.ndarray  # primary favourite category per user
    user_category2: np.ndarray  # second favourite category, "" if none
    item_ids: np.ndarray
    item_rank: np.ndarray  # popularity rank within the item's category, 1 = most popular
    complement_prob: float = COMPLEMENT_PROB
    dislikes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=str))  # (user, item)


@dataclass(frozen=True, eq=False)
class SyntheticStore:
    """A generated shop: events, item catalog and the planted truth."""

    events: pd.DataFrame
    items: pd.DataFrame
    truth: PlantedTruth


def _ids(prefix: str, n: int) -> np.ndarray:
    """Return ids ``prefix + 1..n`` zero-padded to the width of ``n``."""
    if n == 0:
        return np.empty(0, dtype=f"<U{len(prefix) + 1}")
    digits = np.char.zfill(np.arange(1, n + 1).astype(str), len(str(n)))
    return np.char.add(prefix, digits)


def _take(values: np.ndarray, idx: np.ndarray) -> pd.Series:
    """Return ``values[idx]`` as a pandas str Series (null where ``idx < 0``)."""
    indices = pa.array(idx, mask=idx < 0) if (idx < 0).any() else pa.array(idx)
    return pd.Series(pa.array(values).take(indices).to_pandas(), dtype="str")


@dataclass(frozen=True, eq=False)
class _Catalog:
    """Item arrays indexed by catalog position; positions are grouped by category."""

    sizes: np.ndarray  # items per category
    first: np.ndarray  # first position of each category
    cat: np.ndarray
    number: np.ndarray  # 1-based number within the category, as in the item name
    rank: np.ndarray  # popularity rank within the category, 1 = most popular
    cdf: np.ndarray  # category + cumulative popularity within the category
    price: np.ndarray
    in_stock: np.ndarray
    complement_of: np.ndarray  # complement position of each anchor, -1 elsewhere
    ids: np.ndarray  # item id at each position (shuffled)


def _catalog(items: int, rng: np.random.Generator) -> _Catalog:
    """Draw categories, Zipf popularity, log-normal prices, stock and complement pairs."""
    names = np.array([c[0] for c in CATEGORIES])
    shares = np.array([c[2] for c in CATEGORIES])
    sizes = np.maximum(1, np.round(shares * items)).astype(np.int64)
    sizes[int(np.argmax(sizes))] += items - int(sizes.sum())
    first = np.cumsum(sizes) - sizes
    cat = np.repeat(np.arange(len(CATEGORIES)), sizes)
    number = np.arange(items) - first[cat] + 1
    rank = np.concatenate([rng.permutation(int(n)) + 1 for n in sizes])
    weight = rank.astype(np.float64) ** -_ZIPF
    cdf = np.empty(items)
    for c, (lo, n) in enumerate(zip(first.tolist(), sizes.tolist(), strict=True)):
        cdf[lo : lo + n] = c + np.cumsum(weight[lo : lo + n]) / weight[lo : lo + n].sum()
        cdf[lo + n - 1] = c + 1.0
    log_med = np.log([c[3] for c in CATEGORIES])[cat]
    sigma = np.array([c[4] for c in CATEGORIES])[cat]
    price = np.maximum(np.round(np.exp(log_med + sigma * rng.standard_normal(items)), 2), 0.01)
    in_stock = rng.random(items) < 0.95
    complement_of = np.full(items, -1, dtype=np.int64)
    anchor_cats = [c for c, spec in enumerate(CATEGORIES) if spec[5]]
    anchor_pool = sum(int(sizes[c]) for c in anchor_cats)
    for c in anchor_cats:
        comp = int(np.flatnonzero(names == CATEGORIES[c][5])[0])
        eligible = first[c] + np.arange(min(int(sizes[c]), int(sizes[comp])))
        wanted = max(1, round(_ANCHOR_SHARE * items * int(sizes[c]) / anchor_pool))
        p = weight[eligible] / weight[eligible].sum()
        anchors = rng.choice(eligible, size=min(wanted, len(eligible)), replace=False, p=p)
        complement_of[anchors] = first[comp] + number[anchors] - 1
        in_stock[anchors] = in_stock[complement_of[anchors]] = True
    ids = _ids("i", items)[rng.permutation(items)]
    return _Catalog(sizes, first, cat, number, rank, cdf, price, in_stock, complement_of, ids)


def generate_store(
    users: int = 5000,
    items: int = 2000,
    days: int = 90,
    seed: int = 7,
    start: str = "2026-01-01",
    events_per_user: float | None = None,
    dislike_share: float = 0.0,
) -> SyntheticStore:
    """Generate a deterministic synthetic shop with the structure described in the module doc."""
    if users < 1 or days < 1 or items < len(CATEGORIES):
        raise InvalidParameter(f"need users >= 1, days >= 1 and items >= {len(CATEGORIES)}")
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    names = np.array([c[0] for c in CATEGORIES])
    shares = np.array([c[2] for c in CATEGORIES])
    n_cat = len(CATEGORIES)
    cg = _catalog(items, rng)

    # Users: heavy-tailed activity and one or two favourite categories.
    per_user = 50.0 if events_per_user is None else float(events_per_user)
    activity = rng.lognormal(0.0, 1.0, users)
    sess_mean = per_user / _EVENTS_PER_VIEW / _SESSION_VIEWS
    n_sess = rng.poisson(sess_mean * activity / activity.mean())
    fav1 = rng.choice(n_cat, size=users, p=shares)
    fav2 = (fav1 + rng.integers(1, n_cat, users)) % n_cat
    fav2 = np.where(rng.random(users) < 0.5, fav2, fav1)

    # Sessions (start second since `start`) and their views, a few minutes apart.
    s_user = np.repeat(np.arange(users), n_sess)
    n_s = len(s_user)
    shopping = rng.random(n_s) < 0.3
    start_ts = pd.Timestamp(start)
    start_ts = start_ts.tz_convert("UTC") if start_ts.tzinfo else start_ts.tz_localize("UTC")
    day_w = np.where((start_ts.day_of_week + np.arange(days)) % 7 >= 5, 1.3, 1.0)
    s_t0 = (
        rng.choice(days, size=n_s, p=day_w / day_w.sum()) * 86400
        + rng.choice(24, size=n_s, p=_HOURLY / _HOURLY.sum()) * 3600
        + rng.integers(0, 3600, n_s)
    )
    n_views = np.minimum(rng.geometric(1.0 / _SESSION_VIEWS, n_s), 20)
    v_sess = np.repeat(np.arange(n_s), n_views)
    n_v = len(v_sess)
    gaps = np.cumsum(10 + rng.exponential(90.0, n_v).astype(np.int64))
    v_t = s_t0[v_sess] + gaps - gaps[(np.cumsum(n_views) - n_views)[v_sess]]
    v_user = s_user[v_sess]
    r = rng.random(n_v)
    any_cat = np.searchsorted(np.cumsum(shares) / shares.sum(), rng.random(n_v), side="right")
    v_cat = np.where(r < 0.6, fav1[v_user], np.where(r < 0.85, fav2[v_user], any_cat))
    v_item = np.searchsorted(cg.cdf, v_cat + rng.random(n_v), side="right")
    v_item = np.minimum(v_item, cg.first[v_cat] + cg.sizes[v_cat] - 1)

    # Funnel: views -> carts -> purchases, plus planted complements of bought anchors.
    carted = (rng.random(n_v) < np.where(shopping[v_sess], 0.5, 0.15)) & cg.in_stock[v_item]
    c_sess, c_item, c_user = v_sess[carted], v_item[carted], v_user[carted]
    c_t = v_t[carted] + rng.integers(30, 300, len(c_sess))
    n_c = len(c_sess)
    c_qty = np.where(rng.random(n_c) < 0.85, 1, rng.integers(2, 6, n_c))
    bought = rng.random(n_c) < np.where(shopping[c_sess], 0.8, 0.1)
    add = bought & (cg.complement_of[c_item] >= 0) & (rng.random(n_c) < COMPLEMENT_PROB)
    x_sess, x_user, x_item = c_sess[add], c_user[add], cg.complement_of[c_item[add]]
    x_view_t = c_t[add] + rng.integers(20, 120, len(x_sess))
    x_cart_t = x_view_t + rng.integers(20, 120, len(x_sess))
    n_x = len(x_sess)
    v_user, v_item, v_t = np.r_[v_user, x_user], np.r_[v_item, x_item], np.r_[v_t, x_view_t]
    c_user, c_item, c_t = np.r_[c_user, x_user], np.r_[c_item, x_item], np.r_[c_t, x_cart_t]
    c_sess, c_qty = np.r_[c_sess, x_sess], np.r_[c_qty, np.ones(n_x, dtype=np.int64)]
    bought = np.r_[bought, np.ones(n_x, dtype=bool)]

    # Orders: one per session with purchases, one row per (order, item), numbered in time order.
    _, keep = np.unique(c_sess[bought] * items + c_item[bought], return_index=True)
    p_idx = np.flatnonzero(bought)[keep]  # cart rows that become order lines, grouped by session
    _, o_first = np.unique(c_sess[p_idx], return_index=True)
    n_orders = len(o_first)
    o_t = np.maximum.reduceat(c_t[p_idx], o_first) if n_orders else np.empty(0, np.int64)
    o_t = o_t + rng.integers(60, 300, n_orders)
    o_num = np.empty(n_orders, dtype=np.int64)
    o_num[np.argsort(o_t, kind="stable")] = np.arange(n_orders)
    p_group = np.repeat(np.arange(n_orders), np.diff(np.append(o_first, len(p_idx))))

    # Assemble, sort by time (then funnel stage) and convert to pandas.
    n_v, n_c, n_p = len(v_user), len(c_user), len(p_idx)
    user = np.concatenate((v_user, c_user, c_user[p_idx]))
    item = np.concatenate((v_item, c_item, c_item[p_idx]))
    etype = np.repeat(np.arange(3), (n_v, n_c, n_p))
    t = np.minimum(np.concatenate((v_t, c_t, o_t[p_group])), days * 86400 - 1)
    order = np.concatenate((np.full(n_v + n_c, -1), o_num[p_group]))
    qty = np.concatenate((np.ones(n_v, dtype=np.int64), c_qty, c_qty[p_idx]))
    srt = np.argsort(t * 4 + etype, kind="stable")
    item = item[srt]
    stamps = start_ts.tz_localize(None).to_datetime64().astype("datetime64[s]") + t[srt]
    events = pd.DataFrame(
        {
            "user_id": _take(_ids("u", users), user[srt]),
            "item_id": _take(cg.ids, item),
            "event_type": _take(np.array(["view", "cart", "purchase"]), etype[srt]),
            "timestamp": pd.Series(stamps.astype("datetime64[ns]")).dt.tz_localize("UTC"),
            "order_id": _take(_ids("o", n_orders), order[srt]),
            "quantity": qty[srt].astype(np.int64),
            "price": cg.price[item],
        }
    )
    by_id = np.argsort(cg.ids)
    label = np.char.add(np.array([c[1] + " " for c in CATEGORIES])[cg.cat], cg.number.astype(str))
    catalog = pd.DataFrame(
        {
            "item_id": pd.Series(cg.ids[by_id], dtype="str"),
            "name": pd.Series(label[by_id], dtype="str"),
            "category": pd.Series(names[cg.cat][by_id], dtype="str"),
            "price": cg.price[by_id],
            "cost": np.round(cg.price * np.random.default_rng((seed, 1)).uniform(0.45, 0.85, items), 2)[
                by_id
            ],
            "in_stock": cg.in_stock[by_id],
        }
    )
    dislikes = _dislikes(users, fav1, cg, dislike_share, np.random.default_rng((seed, 2)))
    if len(dislikes):
        end = start_ts + pd.Timedelta(seconds=days * 86400 - 1)
        events = _with_dislikes(events, dislikes, _ids("u", users), cg, end)
    anchors = np.flatnonzero(cg.complement_of >= 0)
    truth = PlantedTruth(
        complements=np.stack((cg.ids[anchors], cg.ids[cg.complement_of[anchors]]), axis=1),
        user_ids=_ids("u", users),
        user_category=names[fav1],
        user_category2=np.where(fav2 == fav1, "", names[fav2]),
        item_ids=cg.ids[by_id],
        item_rank=cg.rank[by_id].astype(np.int64),
        dislikes=np.stack((_ids("u", users)[dislikes[:, 0]], cg.ids[dislikes[:, 1]]), axis=1)
        if len(dislikes)
        else np.zeros((0, 2), dtype=str),
    )
    took = time.perf_counter() - began
    logger.info("generated %d events, %d orders in %.2fs", len(events), n_orders, took)
    return SyntheticStore(events=events, items=catalog, truth=truth)


def _dislikes(
    users: int, fav: np.ndarray, cg: _Catalog, share: float, rng: np.random.Generator
) -> np.ndarray:
    """Return (user row, item row) pairs: a ``share`` of users dismiss their favourite's two best sellers."""
    if share <= 0:
        return np.zeros((0, 2), dtype=np.int64)
    chosen = np.flatnonzero(rng.random(users) < share)
    best = np.full((int(cg.cat.max()) + 1, 2), -1, dtype=np.int64)
    for rank in (1, 2):  # one pass per rank over the catalog: the two best sellers of each category
        top = np.flatnonzero(cg.rank == rank)
        best[cg.cat[top], rank - 1] = top
    pairs = np.stack((np.repeat(chosen, 2), best[fav[chosen]].ravel()), axis=1)
    return pairs[pairs[:, 1] >= 0]


def _with_dislikes(
    events: pd.DataFrame, pairs: np.ndarray, user_ids: np.ndarray, cg: _Catalog, when: pd.Timestamp
) -> pd.DataFrame:
    """Return the events with one dismissal per planted pair, at the window's last second."""
    n = len(pairs)
    dismissals = pd.DataFrame(
        {
            "user_id": user_ids[pairs[:, 0]],
            "item_id": cg.ids[pairs[:, 1]],
            "event_type": np.full(n, EventType.DISMISS.value),
            "timestamp": pd.DatetimeIndex([when] * n),
            "order_id": pd.Series([None] * n, dtype=events["order_id"].dtype),
            "quantity": np.ones(n, dtype=np.int64),
            "price": cg.price[pairs[:, 1]],
        }
    )
    return pd.concat([events, dismissals], ignore_index=True)


def _truth_json(truth: PlantedTruth) -> str:
    """Serialise the planted truth as deterministic JSON."""
    users, items = truth.user_ids.tolist(), truth.item_ids.tolist()
    doc = {
        "complement_prob": truth.complement_prob,
        "complements": truth.complements.tolist(),
        "user_category": dict(zip(users, truth.user_category.tolist(), strict=True)),
        "user_category2": dict(zip(users, truth.user_category2.tolist(), strict=True)),
        "item_rank": dict(zip(items, truth.item_rank.tolist(), strict=True)),
        "dislikes": truth.dislikes.tolist(),
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def write_store(store: SyntheticStore, out_dir: Path) -> dict[str, Path]:
    """Write events.csv, items.csv and truth.json; timestamps as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    began = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / f"{name}.csv" for name in ("events", "items")}
    paths["truth"] = out_dir / "truth.json"
    frame = store.events
    naive = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = pa.array(naive.to_numpy().astype("datetime64[s]")).cast(pa.string())
    events = pa.Table.from_pandas(frame.drop(columns="timestamp"), preserve_index=False)
    events = events.add_column(frame.columns.get_loc("timestamp"), "timestamp", stamps)
    pacsv.write_csv(events, paths["events"])
    pacsv.write_csv(pa.Table.from_pandas(store.items, preserve_index=False), paths["items"])
    paths["truth"].write_text(_truth_json(store.truth), encoding="utf-8")
    took = time.perf_counter() - began
    logger.info("wrote %d events to %s in %.2fs", len(store.events), out_dir, took)
    return paths
