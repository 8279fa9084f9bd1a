"""Authenticate a request and check its permissions.

Credentials: ``Authorization: Bearer <JWT access token | API key>`` or
``X-API-Key: <API key>``. The result is stored as ``g.principal``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import g, request

from server.auth import apikeys, tokens
from server.auth.principal import Principal
from server.errors import Forbidden, Unauthorized


def authenticate_request() -> Principal:
    api_key = request.headers.get("X-API-Key")
    if api_key:
        return apikeys.authenticate(api_key.strip())
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized()
    credential = credential.strip()
    if apikeys.looks_like_api_key(credential):
        return apikeys.authenticate(credential)
    return tokens.authenticate_access_token(credential)


def require(*permissions: str) -> Callable:
    """Decorator: the caller must be authenticated and hold every permission named."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = authenticate_request()
            g.principal = principal
            missing = [p for p in permissions if not principal.can(p)]
            if missing:
                raise Forbidden(
                    f"This needs the permission {', '.join(missing)}, which your "
                    f"{'API key' if principal.api_key else 'group'} does not grant.",
                    code="permission_denied",
                )
            return view(*args, **kwargs)

        wrapper._kabar_permissions = permissions  # type: ignore[attr-defined]
        return wrapper

    return decorator


def public(view: Callable) -> Callable:
    """Mark a view as intentionally open (login, health). Tests check every view is marked."""
    view._kabar_public = True  # type: ignore[attr-defined]
    return view
