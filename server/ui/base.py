"""The dashboard's shared pieces: a Blueprint whose views say who may open them (like the
API's ``requires`` / ``public``), and helpers for forms and redirects.

A view validates a form with the API's own marshmallow schema where there is one, calls
the same service function the API view calls, and redirects (POST/redirect/GET).
Service errors (``KabarError``) are shown by the error handlers in ``__init__.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import flask
import marshmallow as ma
from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _

from server.errors import Forbidden, ValidationFailed
from server.ui import login

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class UiBlueprint(flask.Blueprint):
    """A dashboard blueprint. Every view is ``@bp.requires(...)`` or ``@bp.public``;
    tests/server/test_authorization_matrix.py walks them."""

    def requires(self, *permissions: str) -> Callable:
        """A logged-in browser whose user holds every permission named."""

        def decorator(view: Callable) -> Callable:
            @functools.wraps(view)
            def wrapper(*args, **kwargs):
                principal = login.authenticate()
                g.principal = principal
                missing = [p for p in permissions if not principal.can(p)]
                if missing:
                    raise Forbidden(
                        _(
                            "This page needs the permission %(names)s, which your group does "
                            "not grant.",
                            names=", ".join(missing),
                        ),
                        code="permission_denied",
                    )
                return view(*args, **kwargs)

            wrapper._kabar_permissions = permissions  # type: ignore[attr-defined]
            return wrapper

        return decorator

    def public(self, view: Callable) -> Callable:
        view._kabar_public = True  # type: ignore[attr-defined]
        return view


# --- forms --------------------------------------------------------------------------


def form_values(*multi: str) -> dict[str, Any]:
    """The posted form as a dict: empty fields dropped, ``multi`` fields as lists."""
    values: dict[str, Any] = {
        k: v for k, v in request.form.items() if k not in ("csrf_token", "next") and v.strip() != ""
    }
    for name in multi:
        values[name] = request.form.getlist(name)
    return values


def load(schema: ma.Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate form data with the API's schema; 422 with field errors, as the API."""
    try:
        return schema.load(data, unknown=ma.EXCLUDE)
    except ma.ValidationError as exc:
        raise ValidationFailed(errors=exc.messages) from None


def checkbox(name: str) -> bool:
    return request.form.get(name) in ("on", "true", "1", "yes")


def safe_next(default: str) -> str:
    """The form's ``next`` (or the referring page) if it is a path on this site."""
    for candidate in (request.form.get("next"), request.args.get("next"), request.referrer):
        if not candidate:
            continue
        parts = urlsplit(candidate)
        if parts.netloc and parts.netloc != request.host:
            continue
        if (
            parts.scheme not in ("", "http", "https")
            or not parts.path.startswith("/")
            or parts.path.startswith("//")
            or "\\" in candidate
        ):
            continue
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return default


def done(message: str, endpoint: str, **values: Any) -> flask.Response:
    """Flash a success and redirect (303: the browser GETs the page)."""
    flash(message, "success")
    return redirect(url_for(endpoint, **values), 303)


def back(message: str, *, category: str = "success") -> flask.Response:
    """Flash and go back to the page the form was on."""
    flash(message, category)
    return redirect(safe_next(url_for("ui.overview.index")), 303)


def wants_fragment() -> bool:
    """A live region refreshing itself (kabar.js), or the event stream."""
    return (
        bool(request.headers.get("X-Kabar-Fragment"))
        or request.accept_mimetypes.best == "text/event-stream"
    )
