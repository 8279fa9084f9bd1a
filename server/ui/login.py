"""The dashboard's cookie login, on the same rows as the API's logins.

A browser login is one ``LoginSession`` row (``tokens.start_login``), and the signed,
HttpOnly cookie holds only its id. Every request checks the row, so logging out, a block
or a password change (``tokens.revoke`` / ``revoke_all``) ends it at once, in every web
process, as they end a JWT login.
"""

from __future__ import annotations

from flask import current_app, session
from flask_babel import gettext as _

from server.auth import tokens
from server.auth.principal import Principal
from server.errors import Unauthorized
from server.models import User, utcnow

LOGIN_KEY = "login"
USER_KEY = "user"


class LoginRequired(Unauthorized):
    code = "login_required"


def log_in(user: User) -> None:
    """Start a login for ``user`` and bind it to this browser's cookie."""
    login = tokens.start_login(user, lifetime=current_app.permanent_session_lifetime)
    session.clear()  # a fresh cookie (and CSRF token) for the new login
    session.permanent = True
    session[LOGIN_KEY] = login.id
    session[USER_KEY] = user.id


def authenticate() -> Principal:
    """The logged-in user of this browser, or ``LoginRequired``."""
    login_id, user_id = session.get(LOGIN_KEY), session.get(USER_KEY)
    if not login_id or not isinstance(user_id, int):
        raise LoginRequired(_("Log in to continue."))
    try:
        user, login = tokens.active_login(user_id, login_id)
    except Unauthorized:
        session.clear()
        raise LoginRequired(_("Your login has ended; log in again."), code="login_ended") from None
    if login.expires_at <= utcnow():
        session.clear()
        raise LoginRequired(_("Your login has expired; log in again."), code="login_ended")
    return Principal.for_user(user, login_id=login.id)


def log_out() -> None:
    """Revoke this browser's login (if any) and forget the cookie."""
    login_id = session.get(LOGIN_KEY)
    if login_id:
        tokens.revoke(login_id, reason="logout")
    session.clear()
