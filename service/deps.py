"""Request dependencies: the service state and the API key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from service.errors import Unauthorized
from service.state import ServiceState

__all__ = ["State", "get_state", "key_matches", "require_admin_key", "require_key"]


async def get_state(request: Request) -> ServiceState:
    """Return the state the app factory attached."""
    state: ServiceState = request.app.state.orderlift
    return state


State = Annotated[ServiceState, Depends(get_state)]


def key_matches(given: str, keys: tuple[str, ...]) -> bool:
    """Compare against every key in constant time (no early exit)."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


async def require_key(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Refuse /v1 requests without a valid X-API-Key when keys are configured."""
    settings = state.settings
    if not settings.auth_enabled:
        return
    if x_api_key is None:
        raise Unauthorized("this endpoint needs an X-API-Key header")
    if not key_matches(x_api_key, settings.api_keys + settings.admin_keys):
        raise Unauthorized("the X-API-Key is not valid")


async def require_admin_key(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Refuse admin requests without an admin key (always required for admin routes)."""
    keys = state.settings.admin_keys
    if not keys:
        raise Unauthorized("admin routes are disabled: set ORDERLIFT_ADMIN_KEYS")
    if x_api_key is None or not key_matches(x_api_key, keys):
        raise Unauthorized("this endpoint needs an admin X-API-Key")
