"""A pure ASGI shortcut for the two requests a storefront sends on every page.

``GET /v1/users/{user_id}/recommendations`` with nothing but ``n`` and ``explain`` in the query,
and ``POST /v1/cart/cross-sell`` with a JSON body, are parsed here and answered by the functions
their routes call (``service.answers``); the body is validated by the same pydantic model. That
skips FastAPI's routing, dependency solving and parameter handling, which cost more than a cache
hit itself. Everything else, and every request that would not get a 200 (a missing or wrong API
key, a value out of range, no model loaded), goes on to FastAPI untouched, with the body replayed:
errors are answered and documented in one place only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi.responses import Response
from pydantic import ValidationError
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.answers import recommend_for_user, suggest_for_cart
from service.auth import access_error
from service.errors import ServiceError
from service.gate import header
from service.schemas import N_DEFAULT, N_MAX, CrossSellRequest
from service.scorer import Filters
from service.state import ServiceState

__all__ = ["FastLane"]

logger = logging.getLogger(__name__)

USERS, RECOMMENDATIONS, CART = "/v1/users/", "/recommendations", "/v1/cart/cross-sell"
MAX_BODY = 1 << 20  # larger bodies take the ordinary path
_NO_FILTERS = Filters()


def recommendation_query(query: bytes) -> tuple[int, bool] | None:
    """Return (n, explain) from a query holding at most those two, canonically written; else None."""
    n, explain, seen = N_DEFAULT, False, set()
    for part in query.split(b"&") if query else ():
        name, _, value = part.partition(b"=")
        if name in seen:
            return None
        seen.add(name)
        if name == b"n" and value.isdigit() and len(value) <= 3 and value[:1] != b"0":
            n = int(value)
        elif name == b"explain" and value in (b"true", b"false"):
            explain = value == b"true"
        else:
            return None
    return (n, explain) if 1 <= n <= N_MAX else None


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """Return a receive callable that hands out what was read once, then defers to ``receive``."""
    pending = [{"type": "http.request", "body": body, "more_body": more}]

    async def again() -> Message:
        return pending.pop() if pending else await receive()

    return again


def _again(message: Message) -> Receive:
    """Return a receive callable that always hands out ``message`` (a disconnect)."""

    async def again() -> Message:
        return message

    return again


class FastLane:
    """Answer plain recommendation and cross-sell requests before FastAPI; pass everything else on."""

    def __init__(
        self, app: ASGIApp, state_of: Callable[[], ServiceState | None], routes: Mapping[str, BaseRoute]
    ) -> None:
        self.app, self.state_of, self.routes = app, state_of, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path, method = scope["path"], scope["method"]
            if method == "GET" and path.startswith(USERS) and path.endswith(RECOMMENDATIONS):
                user_id = path[len(USERS) : -len(RECOMMENDATIONS)]
                if await self._recommendations(scope, receive, send, user_id):
                    return
            elif method == "POST" and path == CART:
                rest = await self._cross_sell(scope, receive, send)
                if rest is None:
                    return
                receive = rest
        await self.app(scope, receive, send)

    def _ready(self, scope: Scope) -> ServiceState | None:
        """Return the state when a model is loaded and the request's key (if needed) is valid."""
        state = self.state_of()
        if state is None or not state.engines:
            return None
        given = header(scope, b"x-api-key")  # read as FastAPI reads it: latin-1
        if access_error(state.settings, scope["path"], None if given is None else given.decode("latin-1")):
            return None
        return state

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, route: str, answer: Awaitable[Response]
    ) -> bool:
        """Send what ``answer`` returns; False (nothing sent) when it raises, so FastAPI answers."""
        try:
            response = await answer
        except ServiceError:  # the ordinary path raises it again and maps it
            logger.debug("fast lane passing %s on", route, exc_info=True)
            return False
        scope["route"] = self.routes.get(route)
        await response(scope, receive, send)
        return True

    async def _recommendations(self, scope: Scope, receive: Receive, send: Send, user_id: str) -> bool:
        parsed = recommendation_query(scope["query_string"])
        if parsed is None or not 1 <= len(user_id) <= 200 or "/" in user_id:
            return False
        state = self._ready(scope)
        if state is None:
            return False
        n, explain = parsed
        answer = recommend_for_user(state, user_id, n, _NO_FILTERS, explain)
        return await self._answer(scope, receive, send, USERS + "{user_id}" + RECOMMENDATIONS, answer)

    async def _cross_sell(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer the cart and return None, or return a receive that replays the body read so far."""
        kind = header(scope, b"content-type")
        state = self._ready(scope)
        if kind is None or kind.split(b";")[0].strip().lower() != b"application/json" or state is None:
            return receive
        chunks: list[bytes] = []
        size, more = 0, True
        while more and size <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":  # the client left: the ordinary path records it
                return _replay(b"".join(chunks), True, _again(message))
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if not more:
            try:
                request = CrossSellRequest.model_validate_json(body)
            except ValidationError:
                pass
            else:
                answer = suggest_for_cart(state, request)
                if await self._answer(scope, receive, send, CART, answer):
                    return None
        return _replay(body, more, receive)
