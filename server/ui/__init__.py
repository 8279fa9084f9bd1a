"""The dashboard: server-rendered pages at ``/`` over the same services as the API.

``init_app`` binds CSRF protection and Flask-Babel (Indonesian and English) and registers
one parent blueprint, ``ui``, holding the templates, the static files (``/assets``) and
every page's blueprint (``server/ui/pages``). Its handlers give every dashboard response
the security headers, check the CSRF token of every state-changing request, and show a
``KabarError`` as a readable page or message instead of the API's JSON.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime, get_locale, lazy_gettext
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from server.errors import KabarError, Unauthorized, ValidationFailed
from server.events import CATALOGUE
from server.extensions import babel, csrf, db
from server.models import StoredEvent
from server.ui import nav
from server.ui.base import SAFE_METHODS, UiBlueprint, safe_next, wants_fragment

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
# Statuses as people read them: sessions, outbox messages, workflow runs, assignments.
STATUS_WORDS = {
    "created": lazy_gettext("created"),
    "qr": lazy_gettext("waiting for a scan"),
    "pairing_code": lazy_gettext("waiting for the pair code"),
    "connecting": lazy_gettext("connecting"),
    "connected": lazy_gettext("connected"),
    "disconnected": lazy_gettext("disconnected"),
    "reconnecting": lazy_gettext("reconnecting"),
    "logged_out": lazy_gettext("logged out"),
    "banned": lazy_gettext("banned"),
    "failed": lazy_gettext("failed"),
    "stopped": lazy_gettext("stopped"),
    "deleted": lazy_gettext("deleted"),
    "queued": lazy_gettext("queued"),
    "sending": lazy_gettext("sending"),
    "sent": lazy_gettext("sent"),
    "delivered": lazy_gettext("delivered"),
    "read": lazy_gettext("read"),
    "played": lazy_gettext("played"),
    "cancelled": lazy_gettext("cancelled"),
    "expired": lazy_gettext("expired"),
    "running": lazy_gettext("running"),
    "waiting": lazy_gettext("waiting"),
    "completed": lazy_gettext("completed"),
    "active": lazy_gettext("active"),
    "pending": lazy_gettext("on hold"),
    "done": lazy_gettext("done"),
    "replaced": lazy_gettext("replaced"),
}


_MONO = re.compile(r"```(.+?)```", re.S)
_STYLES = [
    (re.compile(rf"(?<![\w{m}]){re.escape(m)}(?=\S)(.+?)(?<=\S){re.escape(m)}(?![\w{m}])"), tag)
    for m, tag in (("*", "strong"), ("_", "em"), ("~", "s"))
]


def whatsapp_text(text: str | None) -> Markup:
    """A message's text as WhatsApp shows it: *bold*, _italic_, ~strike~ and ```mono```
    (escaped first, so a message never injects markup)."""
    html = str(escape(text or ""))
    parts = _MONO.split(html)  # odd items are the monospaced runs, left as they are
    for index in range(0, len(parts), 2):
        for pattern, tag in _STYLES:
            parts[index] = pattern.sub(rf"<{tag}>\1</{tag}>", parts[index])
    for index in range(1, len(parts), 2):
        parts[index] = f"<code>{parts[index]}</code>"
    return Markup("".join(parts))


def status_word(value: str) -> str:
    """A status code (``connected``, ``queued``, ...) in the user's language."""
    return str(STATUS_WORDS.get(value, value))


LANGUAGE_COOKIE = "kabar_lang"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def _pages() -> list:
    """Every page's blueprint. A new feature's pages are one more entry here."""
    from server.ui.pages import (
        account,
        admin,
        apikeys,
        chat,
        events,
        outbox,
        overview,
        people,
        runs,
        sessions,
        simulator,
        staff,
        studio,
        tickets,
        versions,
        webhooks,
        workflows,
    )

    return [
        account.bp,
        overview.bp,
        sessions.bp,
        chat.bp,
        outbox.bp,
        webhooks.bp,
        workflows.bp,
        runs.bp,
        tickets.bp,
        people.bp,
        staff.bp,
        admin.bp,
        apikeys.bp,
        events.bp,
        studio.bp,
        simulator.bp,
        versions.bp,
    ]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(HERE / "translations"))
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_language)
    ui = UiBlueprint(
        "ui",
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path="/assets",
    )
    for page in _pages():
        ui.register_blueprint(page)
    ui.before_request(_before_request)
    ui.after_request(_security_headers)
    ui.context_processor(_template_context)
    ui.register_error_handler(KabarError, _kabar_error)
    ui.register_error_handler(HTTPException, _http_error)
    ui.register_error_handler(Exception, _unexpected)
    ui.add_app_template_filter(_datetime, "dt")
    ui.add_app_template_filter(_pretty, "pretty")
    ui.add_app_template_filter(_duration, "duration")
    ui.add_app_template_filter(whatsapp_text, "whatsapp")
    # Globals, not context: macros imported without context use them too.
    ui.add_app_template_global(_here, "here")
    ui.add_app_template_global(status_word, "status_word")
    ui.add_app_template_global(_query_args, "query_args")
    ui.add_app_template_global(_live_after, "live_after")
    app.register_blueprint(ui)


def select_language() -> str | None:
    """The language the user chose (a cookie), else the browser's, else Indonesian."""
    if not has_request_context():
        return None
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or "id"


def live_types(*prefixes: str) -> str:
    """The catalogue's event types starting with any of ``prefixes``, for a live region
    (EventSource listens by exact type)."""
    return ",".join(t for t in CATALOGUE if t.startswith(prefixes))


def _template_context() -> dict[str, Any]:
    principal = g.get("principal")
    return {
        "principal": principal,
        "nav_items": nav.visible(principal) if principal else [],
        "languages": LANGUAGES,
        "current_language": str(get_locale() or "en"),
        "live_types": live_types,
    }


def _log_end() -> int:
    return db.session.scalar(sa.select(sa.func.max(StoredEvent.seq))) or 0


def _live_after() -> int:
    """The event log's end before the page read anything: its live stream starts there,
    so an event between reading and the browser connecting is not missed."""
    return g.live_after if "live_after" in g else _log_end()


def _here() -> str:
    """This page's path and query, for forms to come back to (never a live fragment)."""
    query = urlencode(_query_args("partial"))
    return request.path + (f"?{query}" if query else "")


def _query_args(*without: str) -> dict[str, str]:
    """This page's query arguments minus ``without`` (links that keep the filters)."""
    return {k: v for k, v in request.args.items() if k not in without}


def _datetime(value, format: str = "short") -> str:
    """A time in the user's language; ISO 8601 text too (what run traces hold)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return format_datetime(value, format) if value else ""


def _pretty(value: Any) -> str:
    """JSON to read (indented, non-ASCII kept); the template escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _duration(seconds: float | None) -> str:
    """A span such as 2 d 3 h, 4 h 10 min or 7 min (an empty string for none)."""
    if seconds is None:
        return ""
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("%(d)s d %(h)s h", d=days, h=hours)
    if hours:
        return _("%(h)s h %(m)s min", h=hours, m=minutes)
    return _("%(m)s min", m=minutes)


def _before_request() -> None:
    if request.method not in SAFE_METHODS:
        csrf.protect()
    elif request.method == "GET" and request.endpoint != "ui.static" and not wants_fragment():
        g.live_after = _log_end()


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: Flask-WTF checks the Referer of forms sent over HTTPS.
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint != "ui.static":
        headers.setdefault("Cache-Control", "no-store")  # no pages from cache after logout
    return response


# --- errors -------------------------------------------------------------------------


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        return [
            line
            for key, value in errors.items()
            for line in _flatten(value, f"{prefix}{key}: " if key != "_schema" else prefix)
        ]
    if isinstance(errors, (list, tuple)):
        return [line for item in errors for line in _flatten(item, prefix)]
    return [f"{prefix}{errors}"]


def _page(status: int, message: str, errors: Any = None):
    if wants_fragment():
        return Response(message, status=status, mimetype="text/plain")
    return render_template(
        "ui/error.html", status=status, message=message, details=_flatten(errors) if errors else []
    ), status


def _kabar_error(error: KabarError):
    db.session.rollback()
    if isinstance(error, Unauthorized):
        if wants_fragment():
            return Response(error.message, status=401, mimetype="text/plain")
        if error.code != "login_required":
            flash(error.message, "error")
        target = (
            request.full_path.rstrip("?")
            if request.method == "GET"
            else safe_next(url_for("ui.overview.index"))
        )
        return redirect(url_for("ui.account.login", next=target))
    # A 404 with field errors is a form naming something missing (a group by name): the
    # form's to fix, not a missing page.
    refused = (error.status == 404 and not error.errors) or error.code == "permission_denied"
    if request.method not in SAFE_METHODS and not refused and not wants_fragment():
        # A form the service refused: back to it, with what was wrong.
        message = error.message
        if isinstance(error, ValidationFailed) and message == ValidationFailed.message:
            message = _("Some fields are missing or invalid:")
        flash(" ".join([message, *_flatten(error.errors or {})]), "error")
        return redirect(safe_next(url_for("ui.overview.index")), 303)
    return _page(error.status, error.message, error.errors)


def _http_error(error: HTTPException):
    db.session.rollback()
    if isinstance(error, CSRFError):
        message = _(
            "This form has expired or did not come from this site. Go back, reload "
            "the page and try again."
        )
    else:
        message = {
            404: _("There is no such page."),
            405: _("This page cannot be used that way."),
        }.get(error.code or 500, error.description or error.name)
    return _page(error.code or 500, message)


def _unexpected(error: Exception):
    db.session.rollback()
    log.exception("unhandled error in the dashboard")
    return _page(
        500,
        _(
            "Something went wrong on our side; the request id is %(id)s.",
            id=g.get("request_id", "-"),
        ),
    )
