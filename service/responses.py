"""Sending answers: pre-serialised JSON bytes as they are, each with its own recommendation id."""

from __future__ import annotations

import secrets

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


def json_response(body: bytes, cache: str | None = None, version: str | None = None) -> Response:
    """Return pre-serialised JSON bytes as they are."""
    headers = {}
    if cache:
        headers["X-Cache"] = cache
    if version:
        headers["X-Model-Version"] = version
    return Response(body, media_type="application/json", headers=headers or None)
