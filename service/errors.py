"""Domain errors of the service and the one table that maps them to HTTP.

Every error body is ``{"error": {"code", "message", "field"?, "value"?}}`` and says what was wrong.

The tree::

    ServiceError (500 internal_error)
    ├── InvalidRequest (422 invalid_request)
    ├── UnknownItem (404 unknown_item)
    ├── UnknownRule (404 unknown_rule)
    ├── ModelNotReady (503 model_not_ready)
    ├── EventLogDown (503 event_log_unavailable)
    ├── RuleStoreDown (503 rule_store_unavailable)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    ├── RateLimited (429 rate_limited)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    └── BodyTooLarge (413 body_too_large)
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.responses import json_response

__all__ = [
    "ERROR_RESPONSES",
    "JSON_BODY_RESPONSES",
    "BodyTooLarge",
    "EventLogDown",
    "Forbidden",
    "InvalidRequest",
    "ModelNotReady",
    "RateLimited",
    "RuleStoreDown",
    "ServiceError",
    "Unauthorized",
    "UnknownItem",
    "UnknownRule",
    "UnsupportedMediaType",
    "error_response",
    "install_error_handlers",
]

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the domain errors; ``status`` and ``code`` say how it reaches the client."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.message, self.field, self.value = message, field, value

    def body(self) -> dict[str, Any]:
        """Return the JSON error body."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
            error["value"] = self.value
        return {"error": error}


class InvalidRequest(ServiceError):
    """A parameter or body is malformed or out of range."""

    status, code = 422, "invalid_request"


class UnknownItem(ServiceError):
    """The item on an item endpoint is not in the model."""

    status, code = 404, "unknown_item"


class UnknownRule(ServiceError):
    """No stored rule has this id."""

    status, code = 404, "unknown_rule"


class ModelNotReady(ServiceError):
    """No model is loaded yet (or it failed to load)."""

    status, code = 503, "model_not_ready"


class EventLogDown(ServiceError):
    """The event log cannot take events now; nothing was acknowledged."""

    status, code = 503, "event_log_unavailable"


class RuleStoreDown(ServiceError):
    """The rule store cannot be written now; nothing changed (the rules in force still apply)."""

    status, code = 503, "rule_store_unavailable"


class Unauthorized(ServiceError):
    """A key is missing or wrong."""

    status, code = 401, "unauthorized"


class Forbidden(ServiceError):
    """A valid key whose role may not call this endpoint."""

    status, code = 403, "forbidden"


class RateLimited(ServiceError):
    """A key (or an address, without keys) is over its request rate; ``retry_after`` seconds to wait."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after: int, field: str | None = None, value: Any = None) -> None:
        super().__init__(message, field, value)
        self.retry_after = retry_after


class UnsupportedMediaType(ServiceError):
    """A body is not sent as ``application/json`` (a form or text/plain post from another page)."""

    status, code = 415, "unsupported_media_type"


class BodyTooLarge(ServiceError, StarletteHTTPException):
    """A request body is over ``ORDERLIFT_MAX_BODY_BYTES``; it was not read past the limit.

    Also an HTTP exception, so that FastAPI re-raises it from a body read (it turns any other
    exception there into a 400) and it reaches the domain handler.
    """

    status, code = 413, "body_too_large"

    def __init__(self, message: str, field: str | None = None, value: Any = None) -> None:
        ServiceError.__init__(self, message, field, value)
        self.status_code, self.detail, self.headers = 413, message, None


def _error_schema(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "example": {"error": {"code": "invalid_request", "message": "n must be between 1 and 100"}}
            }
        },
    }


#: Documented error responses for routes (OpenAPI).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error_schema("Missing or wrong X-API-Key."),
    403: _error_schema("The X-API-Key's role may not call this endpoint."),
    413: _error_schema("The body is over ORDERLIFT_MAX_BODY_BYTES."),
    429: _error_schema("Over the key's request rate; wait Retry-After seconds."),
    422: _error_schema("A parameter or the body is invalid; the body names the field and the value."),
    503: _error_schema("No model is loaded."),
}
JSON_BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    415: _error_schema("The body is not sent as application/json."),
}


def error_response(exc: ServiceError) -> Response:
    """Return the JSON response of a domain error (an ASGI app: pure middleware sends it too)."""
    headers = {"WWW-Authenticate": "ApiKey"} if exc.status == 401 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    return json_response(exc.body(), exc.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors, HTTP errors and anything unexpected to JSON bodies."""

    @app.exception_handler(ServiceError)
    async def _domain(_: Request, exc: ServiceError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        problems = []
        for err in exc.errors():
            location = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            if err.get("type") == "json_invalid":
                location = []
            problems.append(
                {
                    "field": ".".join(location) or "body",
                    "value": _plain(err.get("input")),
                    "message": str(err.get("msg", "invalid")),
                }
            )
        first = problems[0] if problems else {"field": "body", "value": None, "message": "invalid"}
        message = f"{first['field']}: {first['message']} (got {first['value']!r})"
        body = {"error": {"code": "invalid_request", **first, "message": message, "problems": problems}}
        return json_response(body, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # an unparseable body (e.g. not UTF-8) is bad input like any other
            body = {"error": {"code": "invalid_request", "field": "body", "value": None,
                              "message": f"body: cannot be parsed ({exc.detail})"}}  # fmt: skip
            return json_response(body, 422)
        message = str(exc.detail) if exc.status_code != 404 else f"no route {request.url.path}"
        body = {"error": {"code": f"http_{exc.status_code}", "message": message}}
        return json_response(body, exc.status_code, headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        route = getattr(request.scope.get("route"), "path", None) or "unmatched"
        logger.exception("unexpected error on %s %s", request.method, route)  # the template: no user ids
        body = {
            "error": {"code": "internal_error", "message": f"unexpected {type(exc).__name__}; it is logged"}
        }
        return json_response(body, 500)


def _plain(value: Any) -> Any:
    """Return a JSON-safe, short form of an offending input."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "..."
