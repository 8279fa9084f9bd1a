"""Log in, log out, choose the language, see my account and change my password."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from server.auth import accounts, current_principal
from server.auth.permissions import PERMISSIONS
from server.errors import KabarError
from server.extensions import limiter
from server.ui import LANGUAGE_COOKIE, LANGUAGES
from server.ui import login as cookie
from server.ui.base import UiBlueprint, back, safe_next

bp = UiBlueprint("account", __name__)


def _login_limit() -> str:
    return current_app.config["KABAR"]["LOGIN_RATE_LIMIT"]


def _login_username() -> str:
    return f"ui-login-user:{accounts.normalise_username(request.form.get('username', ''))}"


@bp.route("/login", methods=["GET"])
@bp.public
def login():
    return render_template("ui/login.html", next=safe_next(url_for("ui.overview.index")))


@bp.route("/login", methods=["POST"])
@bp.public
@limiter.limit(_login_limit)
@limiter.limit(_login_limit, key_func=_login_username)
def login_post():
    """The same check as POST /api/v1/auth/login; the login is a LoginSession row."""
    target = safe_next(url_for("ui.overview.index"))
    if target.startswith(url_for("ui.account.login")):
        target = url_for("ui.overview.index")
    try:
        user = accounts.login(request.form.get("username", ""), request.form.get("password", ""))
    except KabarError as error:
        flash(
            error.message if error.code == "account_blocked" else _("Wrong username or password."),
            "error",
        )
        return render_template(
            "ui/login.html", next=target, username=request.form.get("username", "")
        ), error.status
    cookie.log_in(user)
    return redirect(target, 303)


@bp.route("/logout", methods=["POST"])
@bp.public
def logout():
    """Public: logging out of an ended login still clears the cookie."""
    cookie.log_out()
    flash(_("You have logged out."), "success")
    return redirect(url_for("ui.account.login"), 303)


@bp.route("/language", methods=["POST"])
@bp.public
def language():
    chosen = request.form.get("language", "")
    response = redirect(safe_next(url_for("ui.overview.index")), 303)
    if chosen in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            secure=current_app.config["SESSION_COOKIE_SECURE"],
        )
    return response


@bp.route("/account")
@bp.requires()
def index():
    principal = current_principal()
    return render_template(
        "ui/account.html",
        user=principal.user,
        permissions=[(p, PERMISSIONS[p]) for p in PERMISSIONS if principal.can(p)],
    )


@bp.route("/account/password", methods=["POST"])
@bp.requires()
def password():
    """Every login of mine ends, this one included (as with the API)."""
    if request.form.get("new_password") != request.form.get("repeat_password"):
        return back(_("The two new passwords differ."), category="error")
    accounts.change_own_password(
        current_principal().user,
        current=request.form.get("current_password", ""),
        new=request.form.get("new_password", ""),
    )
    cookie.log_out()
    flash(_("Your password is changed. Log in with the new one."), "success")
    return redirect(url_for("ui.account.login"), 303)
