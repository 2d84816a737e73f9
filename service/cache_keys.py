"""How cache keys are spelled: one namespace, escaped segments, full digests for lists of ids."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["cache_key", "digest", "tag_key"]

_KEY_ESCAPES = str.maketrans({"%": "%25", ":": "%3A"})


def tag_key(tag: str) -> str:
    """Return the Redis set that lists a tag's keys."""
    return "orderlift:tag:" + tag.translate(_KEY_ESCAPES)


def digest(value: Any) -> str:
    """Return the full SHA-1 of ``value``'s JSON: an unambiguous cache-key part for lists of ids."""
    return hashlib.sha1(orjson.dumps(value), usedforsecurity=False).hexdigest()


def cache_key(kind: str, model_version: str, *parts: str) -> str:
    """Build "orderlift:{kind}:{model_version}:{part}...", percent-encoding '%' and ':' in every segment."""
    return ":".join(["orderlift", *(s.translate(_KEY_ESCAPES) for s in (kind, model_version, *parts))])
