"""Who may call what: key roles, the one key check, and the marketers' page session.

Three roles, each with its own comma-separated key list (several keys per role, so a key is
rotated by adding the new one, moving clients, then removing the old one):

- ``storefront`` (``ORDERLIFT_API_KEYS``): recommendations, similar items, cross-sell, bundles,
  model facts, and posting events;
- ``marketer`` (``ORDERLIFT_MARKETER_KEYS``): the bundles API, the experiment report, model facts,
  the merchandising rules (``/v1/admin/rules``, with admin keys too), and the marketers' page
  (through a session, below);
- ``admin`` (``ORDERLIFT_ADMIN_KEYS``): everything under ``/v1`` plus ``/v1/admin/...`` (reload),
  ``/metrics`` (also as ``Authorization: Bearer``) and the details of ``/readyz``; never the page.
  Without admin keys, ``/metrics`` is left to the network (the shipped nginx denies it).

With no key of any role configured, ``/v1`` is open (development) and admin routes are off.

The page never sees a raw key after login: ``POST /ui/login`` exchanges a marketer key for a
cookie ``expires.kid.signature``, where ``kid`` names the key by a digest prefix and the
signature is an HMAC under that key, so removing the key ends its sessions and the cookie grants
the page only (it is not an ``X-API-Key``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from enum import StrEnum

from service.config import Settings
from service.errors import Forbidden, Unauthorized

__all__ = [
    "ADMIN_PREFIX",
    "Role",
    "access_error",
    "allowed_roles",
    "issue_session",
    "key_role",
    "session_valid",
]

ADMIN_PREFIX = "/v1/admin/"
RULES_PATH = "/v1/admin/rules"
SESSION_TTL_S = 8 * 3600


class Role(StrEnum):
    """A key's role."""

    STOREFRONT = "storefront"
    MARKETER = "marketer"
    ADMIN = "admin"


_ALL = frozenset(Role)
#: The roles each path admits, by prefix; the first match wins (paths beyond it are not guarded).
ACCESS: tuple[tuple[str, frozenset[Role]], ...] = (
    (RULES_PATH, frozenset({Role.MARKETER, Role.ADMIN})),
    (ADMIN_PREFIX, frozenset({Role.ADMIN})),
    ("/v1/experiments/", frozenset({Role.MARKETER, Role.ADMIN})),
    ("/v1/bundles", _ALL),
    ("/v1/trending", _ALL),
    ("/v1/model", _ALL),
    ("/v1/", frozenset({Role.STOREFRONT, Role.ADMIN})),
    ("/metrics", frozenset({Role.ADMIN})),
)


def _keys(settings: Settings) -> tuple[tuple[str, Role], ...]:
    return (
        *((key, Role.STOREFRONT) for key in settings.api_keys),
        *((key, Role.MARKETER) for key in settings.marketer_keys),
        *((key, Role.ADMIN) for key in settings.admin_keys),
    )


def key_role(settings: Settings, given: str | None) -> Role | None:
    """Return the role of key ``given``, comparing against every key in constant time."""
    if given is None:
        return None
    found: Role | None = None
    raw = hashlib.sha256(given.encode()).digest()
    for key, role in _keys(settings):
        if hmac.compare_digest(raw, hashlib.sha256(key.encode()).digest()):  # equal lengths: no leak
            found = role
    return found


def allowed_roles(path: str) -> frozenset[Role] | None:
    """Return the roles that may call ``path``, or None when it needs no key."""
    for prefix, roles in ACCESS:
        if path.startswith(prefix):
            return roles
    return None


def access_error(settings: Settings, path: str, given: str | None) -> Unauthorized | Forbidden | None:
    """Return why a request to ``path`` with key ``given`` is refused, or None: the one key check."""
    roles = allowed_roles(path)
    if roles is None:
        return None
    if roles == {Role.ADMIN} and not settings.admin_keys:
        if path.startswith(ADMIN_PREFIX):
            return Unauthorized("admin routes are disabled: set ORDERLIFT_ADMIN_KEYS")
        return None  # /metrics without admin keys: for scrapers inside the network (nginx denies it)
    if not settings.auth_enabled:
        return None
    needed = " or ".join(role for role in Role if role in roles)
    if given is None:
        return Unauthorized(f"this endpoint needs an X-API-Key ({needed})")
    role = key_role(settings, given)
    if role is None:
        return Unauthorized("the X-API-Key is not valid")
    if role not in roles:
        article = "an" if needed.startswith("a") else "a"
        return Forbidden(
            f"a {role} key may not call {path}: it needs {article} {needed} key",
            field="X-API-Key",
            value=role,
        )
    return None


def _kid(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _sign(key: str, expires: int) -> str:
    return hmac.new(key.encode(), f"orderlift-ui|{expires}".encode(), hashlib.sha256).hexdigest()


def issue_session(settings: Settings, given: str, now: float | None = None) -> str | None:
    """Return a page session for marketer key ``given``, or None when it is not a marketer key."""
    if key_role(settings, given) is not Role.MARKETER:
        return None
    expires = int(now if now is not None else time.time()) + SESSION_TTL_S
    return f"{expires}.{_kid(given)}.{_sign(given, expires)}"


def session_valid(settings: Settings, cookie: str | None, now: float | None = None) -> bool:
    """Return whether ``cookie`` is an unexpired session signed by a configured marketer key."""
    parts = (cookie or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 12:
        return False
    expires, kid, signature = int(parts[0]), parts[1], parts[2]
    if expires < (now if now is not None else time.time()):
        return False
    valid = False
    for key in settings.marketer_keys:
        if hmac.compare_digest(_kid(key), kid):
            valid |= hmac.compare_digest(_sign(key, expires), signature)
    return valid
