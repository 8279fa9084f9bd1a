"""Webhooks: endpoints (create, change, delete), the secret shown once, a test ping, the
delivery log with every attempt, and replays. The same ``server.webhooks.endpoints`` calls
and schemas as /api/v1/webhooks."""

from __future__ import annotations

from flask import flash, render_template, request
from flask_babel import gettext as _

from server import sessions
from server.auth import current_principal
from server.errors import ValidationFailed
from server.events import CATALOGUE
from server.models import DELIVERY_STATUSES, WaSession, WebhookDelivery, WebhookEndpoint, db
from server.pagination import paginate
from server.ui.base import UiBlueprint, back, checkbox, done, form_values, load
from server.webhooks import endpoints
from server.webhooks.schemas import WebhookSchema, WebhookUpdateSchema

bp = UiBlueprint("webhooks", __name__, url_prefix="/webhooks")

PAGE = 50


def _events() -> list[str]:
    raw = request.form.get("events", "").replace("\n", ",")
    return [e.strip() for e in raw.split(",") if e.strip()] or ["*"]


def _headers() -> dict[str, str]:
    """``Name: value`` per line."""
    headers, bad = {}, []
    for line in request.form.get("headers", "").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            bad.append(line)
            continue
        headers[name.strip()] = value.strip()
    if bad:
        raise ValidationFailed(
            errors={
                "headers": [
                    _("Write one header per line as Name: value (not %(line)s).", line=bad[0])
                ]
            }
        )
    return headers


def _body() -> dict:
    return {
        **form_values(),
        "events": _events(),
        "headers": _headers(),
        "enabled": checkbox("enabled"),
    }


def _session_choices() -> list[WaSession]:
    return db.session.scalars(sessions.visible().order_by(WaSession.label)).all()


@bp.route("")
@bp.requires("webhooks:manage")
def index():
    rows = db.session.scalars(
        endpoints.visible(request.args.get("session") or None).order_by(WebhookEndpoint.id)
    ).all()
    return render_template(
        "ui/webhooks/index.html",
        endpoints=rows,
        sessions=_session_choices(),
        catalogue=list(CATALOGUE),
        preselected=request.args.get("session", ""),
    )


@bp.route("", methods=["POST"])
@bp.requires("webhooks:manage")
def create():
    body = load(WebhookSchema(), _body())
    endpoint = endpoints.create(current_principal(), **body)
    return _secret_page(endpoint, endpoint.secret, created=True), 201


def _secret_page(endpoint, secret: str, *, created: bool):
    """The secret, this once: the page is not stored (no-store) and not shown again."""
    return render_template(
        "ui/webhooks/secret.html", endpoint=endpoint, secret=secret, created=created
    )


@bp.route("/<int:webhook_id>")
@bp.requires("webhooks:manage")
def detail(webhook_id):
    endpoint = endpoints.get(webhook_id)
    status = request.args.get("status") or None
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValidationFailed(errors={"status": [_("Unknown status.")]})
    page = paginate(
        endpoints.deliveries_of(endpoint, status),
        WebhookDelivery.id,
        cursor=request.args.get("cursor") or None,
        limit=PAGE,
        descending=True,
    )
    return render_template(
        "ui/webhooks/detail.html",
        endpoint=endpoint,
        page=page,
        statuses=DELIVERY_STATUSES,
        status=status or "",
        session=db.session.get(WaSession, endpoint.session_id) if endpoint.session_id else None,
    )


@bp.route("/<int:webhook_id>", methods=["POST"])
@bp.requires("webhooks:manage")
def update(webhook_id):
    endpoint = endpoints.get(webhook_id)
    body = load(WebhookUpdateSchema(), {**_body(), "name": request.form.get("name", "")})
    endpoints.update(endpoint, **body)
    return back(_("Webhook saved."))


@bp.route("/<int:webhook_id>/delete", methods=["POST"])
@bp.requires("webhooks:manage")
def delete(webhook_id):
    endpoints.delete(endpoints.get(webhook_id))
    return done(_("Webhook deleted."), "ui.webhooks.index")


@bp.route("/<int:webhook_id>/rotate-secret", methods=["POST"])
@bp.requires("webhooks:manage")
def rotate_secret(webhook_id):
    endpoint = endpoints.get(webhook_id)
    return _secret_page(endpoint, endpoints.rotate_secret(endpoint), created=False)


@bp.route("/<int:webhook_id>/test", methods=["POST"])
@bp.requires("webhooks:manage")
def test(webhook_id):
    result = endpoints.ping(endpoints.get(webhook_id))
    if result["ok"]:
        return back(
            _(
                "The receiver answered HTTP %(status)s in %(ms)s ms.",
                status=result["status_code"],
                ms=result["latency_ms"],
            )
        )
    flash(
        _("The test ping failed: %(why)s", why=result["error"] or f"HTTP {result['status_code']}"),
        "error",
    )
    return back(_("Check the URL and that the receiver answers 2xx."), category="info")


@bp.route("/<int:webhook_id>/replay", methods=["POST"])
@bp.requires("webhooks:manage")
def replay(webhook_id):
    status = request.form.get("status", "all")
    if status not in ("failed", "dead", "all"):
        raise ValidationFailed(errors={"status": [_("Unknown status.")]})
    count = endpoints.replay_since(endpoints.get(webhook_id), since=None, status=status)
    return back(_("%(count)s deliveries queued again.", count=count))


@bp.route("/deliveries/<int:delivery_id>/replay", methods=["POST"])
@bp.requires("webhooks:manage")
def replay_delivery(delivery_id):
    endpoints.replay(endpoints.get_delivery(delivery_id))
    return back(_("The delivery is queued again."))
