"""Sessions: list and create; one session's live status, QR and pair code, its actions,
pacing and settings. Everything goes through ``server.sessions`` (and ``server.sandbox_controls``
for the sandbox phone), as /api/v1/sessions does."""

from __future__ import annotations

import base64
from dataclasses import fields

import sqlalchemy as sa
from flask import flash, render_template, request
from flask_babel import format_datetime, lazy_gettext
from flask_babel import gettext as _

from server import sandbox_controls, sessions
from server.auth import current_principal
from server.errors import ValidationFailed
from server.models import SessionStatusChange, User, WaSession, db
from server.outbox.pacing import Pacing
from server.runtime import heartbeat
from server.session_schemas import SessionSchema
from server.ui.base import UiBlueprint, back, checkbox, done, form_values, load
from server.webhooks import endpoints as webhooks

bp = UiBlueprint("sessions", __name__, url_prefix="/sessions")

PACING_FIELDS = [f for f in fields(Pacing)]


@bp.route("")
@bp.requires("sessions:read")
def index():
    rows = db.session.scalars(sessions.visible().order_by(WaSession.created_at)).all()
    owners = {
        user.id: user
        for user in db.session.scalars(
            sa.select(User).where(User.id.in_({row.owner_id for row in rows}))
        )
    }
    return render_template(
        "ui/sessions/index.html",
        sessions=rows,
        owners=owners,
        runtime=heartbeat.state(),
        transports=sessions.TRANSPORTS,
    )


@bp.route("", methods=["POST"])
@bp.requires("sessions:manage")
def create():
    body = load(SessionSchema(), {**form_values(), "auto_start": checkbox("auto_start")})
    session = sessions.create(current_principal(), **body)
    return done(
        _("Session %(label)s created.", label=session.label),
        "ui.sessions.detail",
        session_id=session.id,
    )


def _qr_image(session: WaSession) -> str | None:
    if session.status != "qr" or not session.qr:
        return None
    return "data:image/png;base64," + base64.b64encode(sessions.qr_png(session.qr)).decode()


@bp.route("/<string:session_id>")
@bp.requires("sessions:read")
def detail(session_id):
    session = sessions.get(session_id)
    live = {
        "session": session,
        "qr_image": _qr_image(session),
        "runtime": heartbeat.state(),
        "history": db.session.scalars(
            sa.select(SessionStatusChange)
            .where(SessionStatusChange.session_id == session.id)
            .order_by(SessionStatusChange.id.desc())
            .limit(10)
        ).all(),
    }
    if request.args.get("partial"):
        return render_template("ui/sessions/_live.html", **live)
    hooks = (
        db.session.scalars(webhooks.visible(session.id)).all()
        if current_principal().can("webhooks:manage")
        else []
    )
    return render_template(
        "ui/sessions/detail.html",
        pacing=Pacing.from_settings(session.settings),
        pacing_fields=PACING_FIELDS,
        webhooks=hooks,
        **live,
    )


def _action(name: str, message) -> None:
    def view(session_id):
        getattr(sessions, name)(sessions.get(session_id))
        return back(str(message))

    view.__name__ = name
    bp.add_url_rule(
        f"/<string:session_id>/{name}", name, bp.requires("sessions:manage")(view), methods=["POST"]
    )


_action("start", lazy_gettext("Starting: the status follows below."))
_action("stop", lazy_gettext("Stopping: the device stays paired."))
_action("restart", lazy_gettext("Restarting."))
_action("logout", lazy_gettext("Logged out: pairing again needs a new QR code."))


@bp.route("/<string:session_id>/delete", methods=["POST"])
@bp.requires("sessions:manage")
def delete(session_id):
    session = sessions.get(session_id)
    sessions.delete(session)
    return done(_("Session %(label)s deleted.", label=session.label), "ui.sessions.index")


@bp.route("/<string:session_id>/settings", methods=["POST"])
@bp.requires("sessions:manage")
def settings(session_id):
    session = sessions.get(session_id)
    label = request.form.get("label", "").strip()
    body = load(
        SessionSchema(partial=True, only=("label", "auto_start")),
        {"label": label or session.label, "auto_start": checkbox("auto_start")},
    )
    sessions.update(session, principal=current_principal(), **body)
    return back(_("Settings saved."))


def _pacing_form() -> dict:
    """The pacing options from the form; Pacing.from_settings then checks their values."""
    values, errors = {}, {}
    for field in PACING_FIELDS:
        raw = request.form.get(field.name, "").strip()
        if field.type == "bool":
            values[field.name] = checkbox(field.name)
        elif raw == "":
            values[field.name] = field.default
        else:
            try:
                values[field.name] = {"float": float, "int": int}.get(field.type, str)(raw)
            except ValueError:
                errors[field.name] = [_("Not a number.")]
    if errors:
        raise ValidationFailed(errors={"pacing": errors})
    return values


@bp.route("/<string:session_id>/pacing", methods=["POST"])
@bp.requires("sessions:manage")
def pacing(session_id):
    session = sessions.get(session_id)
    sessions.update(
        session,
        principal=current_principal(),
        settings={**session.settings, "pacing": _pacing_form()},
    )
    return back(_("Pacing saved."))


@bp.route("/<string:session_id>/pair-code", methods=["POST"])
@bp.requires("sessions:manage")
def pair_code(session_id):
    code, expires_at = sessions.pair_code(sessions.get(session_id), request.form.get("phone", ""))
    flash(
        _(
            "On the phone: Linked devices > Link with phone number, then enter %(code)s "
            "before %(at)s.",
            code=code,
            at=format_datetime(expires_at, "medium"),
        ),
        "success",
    )
    return back(_("Pair code requested."))


@bp.route("/<string:session_id>/scan", methods=["POST"])
@bp.requires("sessions:manage")
def scan(session_id):
    """The sandbox phone scans the QR (sandbox sessions only)."""
    values = form_values()
    sandbox_controls.scan(
        sessions.get(session_id),
        phone=values.get("phone", "6281100000000"),
        push_name=values.get("push_name", ""),
    )
    return back(_("Scanned with the sandbox phone."))
