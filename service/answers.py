"""Every cached read answer: the one path from a route (or the fast lane) to an engine.

Each function builds its cache key (``key(version)``, so a warm swap can look up the same answer
under the model swapped out), reads the cache, and on a miss asks one engine object (``Scorer``
or ``CrossSeller``) for the answer. Routes parse and validate, then call one of these; the fast
lane calls the same ones for its two routes. Every key holds the ``View``: the merchandising
rules in force (their set's version and window epoch), the page slot and ``max_per_category``,
so an answer shaped under other rules is never served.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import Response

from service.cache_keys import cache_key, digest
from service.crosssell import CartLines
from service.errors import InvalidRequest
from service.live import LiveHistory
from service.reorder import buy_again
from service.rules import ListRules, RuleBook
from service.schemas import CrossSellRequest, SessionRequest
from service.scorer import Filters, Scorer, SimilarKind
from service.state import ServiceState

__all__ = [
    "View",
    "recommend_for_session",
    "recommend_for_user",
    "similar_to_item",
    "suggest_for_cart",
    "trending_items",
    "user_key",
]

INLINE_CELLS = 20_000  # a cart reading more stored pairs than this is ranked in the thread pool


@dataclass(frozen=True)
class View:
    """Where an answer is shown: the page slot asking, its ``max_per_category`` and the channel."""

    placement: str | None = None
    cap: int | None = None
    channel: str | None = None

    def shape(self, book: RuleBook, scorer: Scorer, endpoint: str) -> tuple[ListRules, str]:
        """Return the rules that shape this answer and the cache-key part that pins them down."""
        rules = book.shape(scorer.catalog, scorer.version, endpoint, self.placement, self.cap)
        return rules, f"{book.key()}|{self.placement or '-'}|{self.cap or '-'}|{self.channel or '-'}"

    def tag(self, answer: dict[str, Any], scorer: Scorer) -> dict[str, Any]:
        """Return an answer naming its placement and channel, in its body and its recommendation id."""
        minted = scorer.new_recommendation_id(self.placement, self.channel)
        return {**answer, "placement": self.placement, "channel": self.channel, "recommendation_id": minted}


DEFAULT_VIEW = View()


def user_key(
    version: str, variant: str, user_id: str, n: int, filters: Filters, explain: bool, view: str
) -> str:
    """Return the cache key of a user's recommendations (``orderlift precompute`` writes under it)."""
    return cache_key("recs", version, variant, user_id, str(n), filters.key(), "x" if explain else "-", view)


async def recommend_for_user(
    state: ServiceState, user_id: str, n: int, filters: Filters, explain: bool, view: View = DEFAULT_VIEW
) -> Response:
    """Answer a user's recommendations from the cache, or score them and cache the bytes."""
    engine = state.require(user_id)
    scorer = engine.scorer
    rules, shown = view.shape(state.rules.book, scorer, "user")
    if scorer.users.get(user_id) is None:  # unknown: without live history, everyone's answer is one
        live = await state.live.get(user_id)
        if not live and live.complete:
            cold = f"{shown}|t{scorer.trend.stamp}"  # trending items, rebuilt now and then

            def popular_key(version: str) -> str:
                return cache_key("popular", version, scorer.variant, str(n), filters.key(), cold)

            return await state.cached(
                popular_key(engine.version),
                lambda _: view.tag(scorer.for_user(user_id, n, filters, False, LiveHistory(), rules), scorer),
                version=engine.version,
                previous=_previous(state, scorer.variant, popular_key),
            )

    def key(version: str) -> str:
        return user_key(version, scorer.variant, user_id, n, filters, explain, shown)

    return await state.cached(
        key(engine.version),
        lambda live: view.tag(scorer.for_user(user_id, n, filters, explain, live, rules), scorer),
        user_id=user_id,
        version=engine.version,
        previous=_previous(state, scorer.variant, key),
    )


async def recommend_for_session(state: ServiceState, body: SessionRequest, filters: Filters) -> Response:
    """Answer a session's recommendations from the cache, or fold its items in and cache the bytes."""
    engine = state.require(body.user_id)
    scorer = engine.scorer
    view = View(body.placement, body.max_per_category, body.channel)
    rules, shown = view.shape(state.rules.book, scorer, "session")
    items = digest([sorted(set(body.recent_items)), body.user_id])  # null: no user, unlike any id
    flags = (str(body.n), filters.key(), str(body.explain), shown, f"t{scorer.trend.stamp}")

    def key(version: str) -> str:
        return cache_key("session", version, scorer.variant, items, *flags)

    return await state.cached(
        key(engine.version),
        lambda live: view.tag(
            scorer.for_session(
                body.user_id,
                body.recent_items,
                body.n,
                filters,
                body.explain,
                rules,
                scorer.dismissed_of(body.user_id, live),
            ),
            scorer,
        ),
        user_id=body.user_id,
        version=engine.version,
        previous=_previous(state, scorer.variant, key),
    )


async def similar_to_item(
    state: ServiceState,
    item_id: str,
    n: int,
    kind: SimilarKind,
    view: View = DEFAULT_VIEW,
    user_id: str | None = None,
) -> Response:
    """Answer an item's related items from the cache, or compute and cache the bytes.

    With ``user_id``, the items that shopper dismissed are left out (an answer per shopper).
    """
    engine = state.require()
    rules, shown = view.shape(state.rules.book, engine.scorer, "similar")
    who = "-" if user_id is None else user_id

    def key(version: str) -> str:
        return cache_key("similar", version, item_id, kind, str(n), shown, who)

    return await state.cached(
        key(engine.version),
        lambda live: view.tag(
            engine.scorer.similar(item_id, n, kind, rules, engine.scorer.dismissed_of(user_id, live)),
            engine.scorer,
        ),
        user_id=user_id,
        version=engine.version,
        previous=_previous(state, engine.scorer.variant, key),
    )


async def trending_items(
    state: ServiceState,
    n: int,
    category: str | None,
    window: int,
    view: View = DEFAULT_VIEW,
    user_id: str | None = None,
) -> Response:
    """Answer the trending items (of a category) from the cache, or score them and cache the bytes.

    With ``user_id``, the items that shopper dismissed are left out (an answer per shopper).
    """
    engine = state.require()
    await state.refresh_trends()
    scorer = engine.scorer
    rules, shown = view.shape(state.rules.book, scorer, "trending")
    parts = (str(n), category or "-", str(window), shown, f"t{scorer.trend.stamp}", user_id or "-")

    def key(version: str) -> str:
        return cache_key("trending", version, scorer.variant, *parts)

    return await state.cached(
        key(engine.version),
        lambda live: view.tag(
            scorer.trending(n, category, window, rules, scorer.dismissed_of(user_id, live)), scorer
        ),
        user_id=user_id,
        version=engine.version,
    )


async def reorder_for_user(
    state: ServiceState, user_id: str, n: int, horizon: int, view: View = DEFAULT_VIEW
) -> Response:
    """Answer a customer's buy-again list from the cache, or rank their past items and cache the bytes."""
    engine = state.require(user_id)
    await state.refresh_trends()  # "today" is the newest day known, live events included
    scorer = engine.scorer
    rules, shown = view.shape(state.rules.book, scorer, "reorder")
    parts = (user_id, str(n), str(horizon), shown, f"t{scorer.trend.stamp}")

    def key(version: str) -> str:
        return cache_key("reorder", version, scorer.variant, *parts)

    return await state.cached(
        key(engine.version),
        lambda live: view.tag(buy_again(scorer, user_id, n, live, rules, horizon), scorer),
        user_id=user_id,
        version=engine.version,
        previous=_previous(state, scorer.variant, key),
    )


def _previous(state: ServiceState, variant: str, key: Callable[[str], str]) -> tuple[str, str] | None:
    """Return the key and version of this answer under the model swapped out lately, if any."""
    version = state.previous_version(variant)
    return None if version is None else (key(version), version)


async def suggest_for_cart(state: ServiceState, body: CrossSellRequest) -> Response:
    """Answer a cart's cross-sell from the cache, or compute it and cache the bytes.

    Without a known user the work is a few small sparse reads (about 0.15 ms for 20 items), done on
    the event loop; a known user's blend scores the whole catalog, and a cart of many popular items
    reads many pairs: those run in the thread pool.
    """
    engine = state.require(body.user_id)
    cart = sorted({line.item_id for line in body.items})
    limit = state.settings.max_cart_items
    if len(cart) > limit:
        raise InvalidRequest(
            f"the cart has {len(cart):,} distinct items; at most {limit:,} are accepted "
            "(ORDERLIFT_MAX_CART_ITEMS)",
            field="items",
            value=len(cart),
        )
    quantity: dict[str, int] = {}
    for line in body.items:
        quantity[line.item_id] = quantity.get(line.item_id, 0) + line.quantity
    lines = [(item, quantity[item]) for item in cart]
    view = View(body.placement, body.max_per_category, body.channel)
    rules, shown = view.shape(state.rules.book, engine.scorer, "cross_sell")
    flags = f"{body.n}:{body.include_substitutes}:{body.rank_by}:{shown}"
    cart_digest = digest([lines, body.user_id])

    def key(version: str) -> str:
        return cache_key("cart", version, engine.scorer.variant, cart_digest, flags)

    known = body.user_id is not None and engine.scorer.users.get(body.user_id) is not None
    seller = engine.crosssell

    @functools.cache
    def prepared() -> CartLines:  # read once, on a miss only
        return seller.prepare(lines)

    return await state.cached(
        key(engine.version),
        lambda live: view.tag(
            seller.suggest(
                prepared(),
                body.n,
                body.user_id,
                body.include_substitutes,
                body.rank_by,
                rules,
                engine.scorer.dismissed_of(body.user_id, live),
            ),
            engine.scorer,
        ),
        user_id=body.user_id,
        version=engine.version,
        inline=lambda: not known and prepared().cost <= INLINE_CELLS,
        previous=_previous(state, engine.scorer.variant, key),
    )
