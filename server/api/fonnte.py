"""/fonnte: fonnte's API on Kabar, for clients that change only their base URL and token.

fonnte's conventions, kept here and nowhere else in Kabar:

- the token is the whole ``Authorization`` header (no ``Bearer``); here it is a Kabar API
  key bound to one session (``POST /api/v1/api-keys`` with ``session_id``);
- fields come as a form (urlencoded or multipart, as PHP's cURL sends an array) or JSON;
- every answer is HTTP 200 with ``status`` true or false; a refusal says why in
  ``reason``. Kabar's own ``code`` rides along, and ``detail`` says what to do.

What each field does, and what is not supported: docs/fonnte.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from server import media as media_store
from server import sessions
from server.auth import apikeys, public
from server.errors import Forbidden, KabarError, Unauthorized
from server.fonnte import lookups, webhooks
from server.fonnte import send as sending
from server.models import WaSession, db

blp = Blueprint("fonnte", __name__, url_prefix="/fonnte")

# Kabar's error codes -> the reason fonnte gives for the same trouble.
REASONS = {
    "unauthorized": "invalid token",
    "api_key_invalid": "invalid token",
    "api_key_revoked": "invalid token",
    "api_key_expired": "invalid token",
    "account_blocked": "invalid token",
    "api_key_not_bound": "invalid token",
    "session_not_found": "invalid token",
    "permission_denied": "access denied",
    "unsafe_url": "url invalid",
    "fetch_failed": "url unreachable",
    "media_too_large": "file too large",
    "validation_error": "input invalid",
    "runtime_down": "device disconnected",
}


def _token() -> str:
    header = request.headers.get("Authorization", "").strip()
    scheme, _, rest = header.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else header


def _device(permissions: tuple[str, ...]) -> WaSession:
    """The session the token is bound to, after the same checks as the rest of the API."""
    token = _token()
    if not apikeys.looks_like_api_key(token):
        raise Unauthorized(
            "The token is not a Kabar API key. Use a key bound to one "
            "session (POST /api/v1/api-keys with session_id)."
        )
    principal = apikeys.authenticate(token)
    g.principal = principal
    if principal.api_key is None or principal.api_key.session_id is None:
        raise Forbidden(
            "This API key is not bound to a session, so it is no fonnte device "
            "token. Make one with POST /api/v1/api-keys and a session_id.",
            code="api_key_not_bound",
        )
    missing = [p for p in permissions if not principal.can(p)]
    if missing:
        raise Forbidden(
            f"This needs the permission {', '.join(missing)}, which your API key does not grant.",
            code="permission_denied",
        )
    return sessions.get(principal.api_key.session_id)


def device_token(*permissions: str) -> Callable:
    """Decorator: the view gets the token's session; refusals are fonnte-shaped."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            return view(_device(permissions), *args, **kwargs)

        wrapper._kabar_permissions = permissions  # type: ignore[attr-defined]
        wrapper._kabar_fonnte = True  # type: ignore[attr-defined]
        return wrapper

    return decorator


def _fields() -> dict[str, Any]:
    """fonnte's fields from a JSON body, or from the form (urlencoded or multipart)."""
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}
    return request.form.to_dict()


def _answer(body: dict[str, Any]):
    return jsonify(body), 200


@blp.errorhandler(KabarError)
def _refused(error: KabarError):
    db.session.rollback()  # a refused request leaves nothing half-done behind
    reason = REASONS.get(error.code, error.message)
    body: dict[str, Any] = {"reason": reason, "status": False, "code": error.code}
    if reason != error.message:
        body["detail"] = error.message
    if error.errors:
        body["errors"] = error.errors
    return _answer(body)


@blp.errorhandler(HTTPException)
def _http_refused(error: HTTPException):
    db.session.rollback()
    return _answer(
        {
            "reason": (error.description or error.name or "request invalid"),
            "status": False,
            "code": f"http_{error.code}",
        }
    )


@blp.route("/send", methods=["POST"], strict_slashes=False)
@device_token("messages:send")
def send(session: WaSession):
    """fonnte's send: one or many targets, text, media, location, poll, schedule, delay."""
    upload = request.files.get("file")
    queued = sending.send(
        session, _fields(), upload=upload, region=current_app.config["KABAR"]["PHONE_REGION"]
    )
    return _answer(sending.answer(queued))


@blp.route("/status", methods=["POST"], strict_slashes=False)
@device_token("sessions:read")
def status(session: WaSession):
    """fonnte's message status look-up by the ``id`` send answered."""
    return _answer(lookups.status(session, _fields()))


@blp.route("/device", methods=["POST"], strict_slashes=False)
@device_token("sessions:read")
def device(session: WaSession):
    """fonnte's device profile: the session's number, name and connection."""
    return _answer(lookups.device(session))


@blp.route("/media/<signed>", methods=["GET"])
@public  # the signed, 30-minute link is the credential, as fonnte's webhook url is
def media_file(signed: str):
    """The file of an inbound message, from the ``url`` of a fonnte-format webhook."""
    message = webhooks.message_of_link(signed)
    sha256 = (message.media or {}).get("sha256") if message is not None else None
    if not sha256:
        return jsonify({"status": False, "reason": "file not found or link expired"}), 404
    info = message.media or {}
    return send_file(
        media_store.path_of(sha256),
        mimetype=info.get("mimetype"),
        download_name=info.get("filename") or sha256,
        max_age=0,
    )
