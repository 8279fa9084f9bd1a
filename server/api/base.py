"""The API's shared pieces: the Api and Blueprint classes, error schema, the page
schemas (the pagination itself is server/pagination.py, which the dashboard shares)."""

from __future__ import annotations

from collections.abc import Callable

import flask_smorest
import marshmallow as ma
from werkzeug.exceptions import HTTPException

from server.auth.guard import public, require
from server.errors import error_body
from server.pagination import decode_cursor, encode_cursor, paginate

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKey": []}]

# Stable codes for errors Flask/Werkzeug raise before our code runs.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ErrorSchema(ma.Schema):
    code = ma.fields.String(
        required=True,
        metadata={"description": "Stable machine-readable error code, e.g. user_not_found."},
    )
    message = ma.fields.String(required=True, metadata={"description": "What went wrong."})
    status = ma.fields.Integer(required=True, metadata={"description": "HTTP status."})
    errors = ma.fields.Dict(metadata={"description": "Field errors (422), by location."})
    request_id = ma.fields.String()


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        if status == 500:
            message = "Something went wrong on our side; the request id is in the logs."
        elif status == 422:
            message = "Some fields are missing or invalid; see errors."
        elif status == 400 and isinstance(errors, dict) and "json" in errors:
            message = "The request body is not valid JSON."
        elif status == 429:
            message = f"Too many requests: the limit is {error.description}. Try again later."
        else:
            message = data.get("message") or error.description or error.name
        headers = dict(data.get("headers") or {})
        # Keep the headers the status itself needs: Allow on a 405 (HTTP requires it),
        # Retry-After on a 429. The rest (Content-Type: text/html) is Werkzeug's page.
        headers.update(
            {k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")}
        )
        return (
            error_body(status, HTTP_CODES.get(status, f"http_{status}"), message, errors),
            status,
            headers,
        )


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest Blueprint whose views declare who may call them."""

    def requires(self, *permissions: str) -> Callable:
        """Authenticate the caller and demand ``permissions``; documents the security."""

        def decorator(func: Callable) -> Callable:
            wrapped = require(*permissions)(func)
            note = (
                f"Requires: {', '.join(permissions)}."
                if permissions
                else "Requires any authenticated caller."
            )
            return self.doc(
                security=SECURITY,
                **{"x-permissions": list(permissions)},
                description=((func.__doc__ or "").strip() + "\n\n" + note).strip(),
            )(wrapped)

        return decorator

    def public(self, func: Callable) -> Callable:
        return self.doc(security=[])(public(func))


# --- cursor pagination (server/pagination.py) ---------------------------------------


class PageArgs(ma.Schema):
    cursor = ma.fields.String(
        load_default=None, metadata={"description": "The next_cursor of the previous page."}
    )
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 200))


def page_schema(item: type[ma.Schema]) -> type[ma.Schema]:
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item), required=True),
            "next_cursor": ma.fields.String(
                allow_none=True,
                metadata={
                    "description": "Pass as cursor for the next page; null on the last page."
                },
            ),
        },
        name=f"{item.__name__.removesuffix('Schema')}PageSchema",
    )


__all__ = [
    "HTTP_CODES",
    "SECURITY",
    "Api",
    "Blueprint",
    "ErrorSchema",
    "PageArgs",
    "decode_cursor",
    "encode_cursor",
    "page_schema",
    "paginate",
]
