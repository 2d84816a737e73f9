"""Sending JSON: the one way every route, error and cached answer reaches the client.

Cached answers are pre-serialised bytes, sent as they are, each with its own recommendation id.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi.responses import Response

__all__ = ["json_response", "with_fresh_id"]


_ID_FIELD = b'"recommendation_id":"'


def with_fresh_id(body: bytes) -> bytes:
    """Return stored answer bytes with a recommendation id minted for this response (same variant).

    The id is ``{variant}.{32 hex}``; shoppers served one cached answer must still be told apart.
    """
    start = body.find(_ID_FIELD)
    if start < 0:
        return body
    end = body.find(b'"', start + len(_ID_FIELD))
    dot = body.rfind(b".", start, end)
    if dot < 0:
        return body
    return body[: dot + 1] + secrets.token_hex(16).encode() + body[end:]


def json_response(
    body: bytes | Mapping[str, Any],
    status: int = 200,
    cache: str | None = None,
    version: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Return JSON: bytes as they are, a mapping serialised once (numpy values too)."""
    sent = dict(headers or {})
    if cache:
        sent["X-Cache"] = cache
    if version:
        sent["X-Model-Version"] = version
    if not isinstance(body, bytes):
        body = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json", headers=sent or None)
