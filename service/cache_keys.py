"""How cache keys are spelled: one namespace, escaped segments, full digests, generation stamps.

An answer about one user (a *scope*) is stored under its key stamped with the user's current
generation, ``{key}:g{generation}``; an event gives the user a new generation that was never used
before, so answers computed earlier (even ones stored after the event) are never read again and
simply expire. No per-user key lists are kept, so invalidation is one write per user.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["cache_key", "digest", "generation_key", "stamped", "user_scope"]

_KEY_ESCAPES = str.maketrans({"%": "%25", ":": "%3A"})


def user_scope(user_id: str) -> str:
    """Return the scope of a user's answers (what their events invalidate)."""
    return f"user:{user_id}"


def generation_key(scope: str) -> str:
    """Return the Redis key that holds a scope's current generation."""
    return "orderlift:gen:" + scope.translate(_KEY_ESCAPES)


def stamped(key: str, generation: str) -> str:
    """Return ``key`` stamped with a generation; unambiguous, since segments escape ':'."""
    return f"{key}:g{generation}"


def digest(value: Any) -> str:
    """Return the full SHA-1 of ``value``'s JSON: an unambiguous cache-key part for lists of ids."""
    return hashlib.sha1(orjson.dumps(value), usedforsecurity=False).hexdigest()


def cache_key(kind: str, model_version: str, *parts: str) -> str:
    """Build "orderlift:{kind}:{model_version}:{part}...", percent-encoding '%' and ':' in every segment."""
    return ":".join(["orderlift", *(s.translate(_KEY_ESCAPES) for s in (kind, model_version, *parts))])
