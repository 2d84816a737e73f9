"""The first thing a request meets: its key is checked, its rate counted and its body bounded.

``Gate`` is pure ASGI and sits outside the fast lane and FastAPI. A body declared larger than
``ORDERLIFT_MAX_BODY_BYTES`` is answered 413 at once, with or without a key; a request with a
valid key is counted against its role's rate, and a page login against its address's
(``ratelimit``, 429 with ``Retry-After`` over it); a ``/v1`` request with a body and without a
key allowed there (``auth.access_error``, the one key check) is answered 401 or 403
without reading a byte of it (a request without a body is routed first: 404 or 405 for what does
not exist, then the route's own key check); a body that grows past the limit while read (chunked,
or lying about its length) stops the read with ``BodyTooLarge``, answered 413 too. Every answer
carries the usual JSON error body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import access_error, allowed_roles, key_role
from service.config import Settings
from service.errors import BodyTooLarge, ServiceError, error_response
from service.ratelimit import RateLimiter

__all__ = ["Gate", "header"]


LOGIN = "/ui/login"


def header(scope: Scope, name: bytes) -> bytes | None:
    """Return the raw value of the first header ``name`` (lower-case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class Gate:
    """Refuse key-less and oversized requests before their bodies are read."""

    def __init__(self, app: ASGIApp, settings: Settings, limiter: RateLimiter) -> None:
        self.app, self.settings, self.limiter = app, settings, limiter

    async def counted(self, scope: Scope, given: str | None) -> ServiceError | None:
        """Count the request against its key's (or its login address's) rate; the error when over."""
        try:
            if scope["path"] == LOGIN and scope["method"] == "POST":
                await self.limiter.check("login", str((scope.get("client") or ("-",))[0]))
            elif self.settings.auth_enabled and allowed_roles(scope["path"]) is not None:
                role = key_role(self.settings, given)
                if role is not None and given is not None:
                    await self.limiter.check(role, given)
        except ServiceError as exc:
            return exc
        return None

    def too_large(self) -> BodyTooLarge:
        """Return the error of a body over the limit."""
        limit = self.settings.max_body_bytes
        return BodyTooLarge(
            f"the body is over {limit:,} bytes (ORDERLIFT_MAX_BODY_BYTES)", field="body", value=limit
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        limit = self.settings.max_body_bytes
        raw = header(scope, b"x-api-key")
        given = None if raw is None else raw.decode("latin-1")  # as FastAPI reads it
        refused: ServiceError | None = None
        if declared is not None and declared.isdigit() and int(declared) > limit:
            refused = self.too_large()  # with or without a key: nothing is read
        else:
            refused = await self.counted(scope, given)
        chunked = header(scope, b"transfer-encoding") is not None
        if refused is None and (declared not in (None, b"0") or chunked):
            # a body is coming: refuse a key-less one before reading it (without a body, routing
            # answers first, 404 or 405 for what does not exist, then the routes' own key check)
            refused = access_error(self.settings, scope["path"], given)
        if refused is not None:
            await error_response(refused)(scope, receive, send)
            return
        read, started = 0, False

        async def bounded() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit:
                    raise self.too_large()
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded, watched)
        except BodyTooLarge as exc:  # raised by the read above, wherever the body was being read
            if started:
                raise
            await error_response(exc)(scope, receive, send)
