"""Request dependencies: the service state and the API key check."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from service.config import Settings
from service.errors import Unauthorized
from service.state import ServiceState

__all__ = ["State", "get_state", "key_error", "key_matches", "require_admin_key", "require_key"]

ADMIN_PREFIX = "/v1/admin/"


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


def key_error(settings: Settings, path: str, given: str | None) -> Unauthorized | None:
    """Return why a request to ``path`` with key ``given`` is refused, or None: the one key check.

    ``/v1/admin/...`` always needs an admin key (none configured: admin routes are off); every
    other ``/v1`` path needs a key of either kind once any key is configured.
    """
    if path.startswith(ADMIN_PREFIX):
        if not settings.admin_keys:
            return Unauthorized("admin routes are disabled: set ORDERLIFT_ADMIN_KEYS")
        if given is None or not key_matches(given, settings.admin_keys):
            return Unauthorized("this endpoint needs an admin X-API-Key")
        return None
    if not settings.auth_enabled or not path.startswith("/v1/"):
        return None
    if given is None:
        return Unauthorized("this endpoint needs an X-API-Key header")
    if not key_matches(given, settings.api_keys + settings.admin_keys):
        return Unauthorized("the X-API-Key is not valid")
    return None


async def require_key(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Refuse /v1 requests without a valid X-API-Key when keys are configured."""
    error = key_error(state.settings, "/v1/", x_api_key)
    if error is not None:
        raise error


async def require_admin_key(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Refuse admin requests without an admin key (always required for admin routes)."""
    error = key_error(state.settings, ADMIN_PREFIX, x_api_key)
    if error is not None:
        raise error
