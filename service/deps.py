"""Request dependencies: the service state and the key check of the route's path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.auth import access_error
from service.state import ServiceState

__all__ = ["State", "get_state", "require_key"]


async def get_state(request: Request) -> ServiceState:
    """Return the state the app factory attached."""
    state: ServiceState = request.app.state.orderlift
    return state


State = Annotated[ServiceState, Depends(get_state)]


async def require_key(
    request: Request, state: State, x_api_key: Annotated[str | None, Header()] = None
) -> None:
    """Refuse a request whose X-API-Key's role may not call this path (``auth.access_error``)."""
    error = access_error(state.settings, request.url.path, x_api_key)
    if error is not None:
        raise error
