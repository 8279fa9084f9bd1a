"""One exception root, ``KabarError``, mapped once to the API's error shape.

Every error the API returns looks like::

    {"code": "user_not_found", "message": "No user with id 7.", "status": 404,
     "request_id": "…", "errors": {...}}   # errors: field errors, only for 422

``code`` is stable and machine readable; ``message`` is a sentence for a person.
"""

from __future__ import annotations

from typing import Any


class KabarError(Exception):
    """Base of every error Kabar raises on purpose."""

    status = 400
    code = "bad_request"
    message = "The request could not be handled."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code
        self.errors = errors
        self.headers = headers or {}


class BadRequest(KabarError):
    status = 400
    code = "bad_request"


class ValidationFailed(KabarError):
    status = 422
    code = "validation_error"
    message = "Some fields are missing or invalid; see errors."


class Unauthorized(KabarError):
    status = 401
    code = "unauthorized"
    message = "Log in or send an API key: Authorization: Bearer <token> or X-API-Key: <key>."


class Forbidden(KabarError):
    status = 403
    code = "forbidden"
    message = "You do not have permission for this."


class NotFound(KabarError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(KabarError):
    status = 409
    code = "conflict"
    message = "This conflicts with the current state."


class ServiceUnavailable(KabarError):
    status = 503
    code = "unavailable"
    message = "The service is not available right now; try again shortly."


def error_body(
    status: int, code: str, message: str, errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    from flask import g, has_request_context

    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if errors:
        body["errors"] = errors
    if has_request_context() and getattr(g, "request_id", None):
        body["request_id"] = g.request_id
    return body
