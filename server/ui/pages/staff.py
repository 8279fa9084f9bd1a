"""Helpdesk staff: which users handle tickets, with the phone they use on WhatsApp, their
level (Administrator, Staf, TBO) and status. The same ``server.tickets.staff`` calls and
schema as /api/v1/staff; a user is named by their username here."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from server.auth import accounts
from server.errors import ValidationFailed
from server.models import STAFF_LEVELS, STAFF_STATUSES, StaffProfile
from server.pagination import paginate
from server.tickets import staff
from server.tickets.schemas import StaffProfileSchema
from server.ui.base import UiBlueprint, back, done, form_values, load

bp = UiBlueprint("staff", __name__, url_prefix="/helpdesk/staff")

PAGE = 100


@bp.route("")
@bp.requires("people:manage")
def index():
    query = staff.search(
        level=request.args.get("level") or None,
        status=request.args.get("status") or None,
        q=request.args.get("q") or None,
    )
    page = paginate(
        query, StaffProfile.user_id, cursor=request.args.get("cursor") or None, limit=PAGE
    )
    return render_template(
        "ui/staff/index.html",
        page=page,
        args=request.args,
        levels=[(level, staff.LABELS[level]) for level in STAFF_LEVELS],
        statuses=STAFF_STATUSES,
    )


def _profile() -> dict:
    return load(StaffProfileSchema(), form_values())


@bp.route("", methods=["POST"])
@bp.requires("people:manage")
def create():
    username = request.form.get("username", "").strip()
    user = accounts.find_user(username) if username else None
    if user is None:
        raise ValidationFailed(
            errors={
                "username": [
                    _("No user named %(name)s: create the user first (Users).", name=username)
                    if username
                    else _("Give the username of the staff member's login.")
                ]
            }
        )
    profile = staff.save(user, **_profile())
    return done(
        _(
            "%(name)s is helpdesk staff (%(level)s).",
            name=staff.display_name(user),
            level=staff.LABELS[profile.level],
        ),
        "ui.staff.index",
    )


@bp.route("/<int:user_id>", methods=["POST"])
@bp.requires("people:manage")
def update(user_id):
    profile = staff.get(user_id)
    staff.save(accounts.get_user(profile.user_id), **_profile())
    return back(_("%(name)s saved.", name=staff.display_name(profile.user)))


@bp.route("/<int:user_id>/delete", methods=["POST"])
@bp.requires("people:manage")
def delete(user_id):
    profile = staff.get(user_id)
    name = staff.display_name(profile.user)
    staff.remove(profile)
    return done(
        _("%(name)s is no longer staff; their tickets stay assigned to them.", name=name),
        "ui.staff.index",
    )
