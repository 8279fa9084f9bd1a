"""API keys: mine (admins: everyone's), create one (the key shown once), revoke. The same
``server.auth.apikeys`` calls as /api/v1/api-keys."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from flask_babel import gettext as _

from server.auth import apikeys, current_principal, get_owned, scoped
from server.auth.permissions import PERMISSIONS
from server.auth.schemas import ApiKeySchema
from server.errors import ValidationFailed
from server.models import ApiKey, db, utcnow
from server.ui.base import UiBlueprint, back, form_values, load

bp = UiBlueprint("apikeys", __name__, url_prefix="/api-keys")


@bp.route("")
@bp.requires()
def index():
    principal = current_principal()
    keys = db.session.scalars(scoped(ApiKey).order_by(ApiKey.id.desc())).all()
    return render_template(
        "ui/apikeys/index.html",
        keys=keys,
        now=utcnow(),
        permissions=[(name, text) for name, text in PERMISSIONS.items() if principal.can(name)],
    )


def _expiry(raw: str | None) -> str | None:
    """A date field: the key works until the end of that day (dashboard time zone)."""
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise ValidationFailed(errors={"expires_at": [_("Use a date like 2025-01-31.")]}) from None
    zone = ZoneInfo(current_app.config["KABAR"]["DASHBOARD_TIMEZONE"])
    return datetime.combine(day, time(23, 59, 59), zone).isoformat()


@bp.route("", methods=["POST"])
@bp.requires()
def create():
    values = form_values("permissions")
    values["expires_at"] = _expiry(values.get("expires_at"))
    body = load(ApiKeySchema(), values)
    if not body["permissions"]:
        raise ValidationFailed(errors={"permissions": [_("Tick at least one permission.")]})
    row, key = apikeys.create(
        current_principal(),
        name=body["name"],
        permissions=body["permissions"],
        expires_at=body["expires_at"],
    )
    return render_template("ui/apikeys/created.html", row=row, key=key), 201


@bp.route("/<int:key_id>/revoke", methods=["POST"])
@bp.requires()
def revoke(key_id):
    row = get_owned(ApiKey, key_id, what="api key")
    apikeys.revoke(row)
    return back(_("API key %(name)s revoked: it stops working now.", name=row.name))
