"""/api/v1/sessions: WhatsApp sessions, owner-scoped."""

from __future__ import annotations

import base64

import marshmallow as ma
import sqlalchemy as sa
from flask import Response
from flask.views import MethodView

from server import sessions
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.auth import current_principal
from server.models import SessionStatusChange, WaSession, db
from server.runtime import live
from server.session_schemas import SessionSchema

blp = Blueprint(
    "sessions",
    __name__,
    url_prefix="/api/v1/sessions",
    description="WhatsApp sessions: one per account (device).",
)


class SessionUpdateSchema(ma.Schema):
    label = ma.fields.String(validate=ma.validate.Length(1, 128))
    auto_start = ma.fields.Boolean()
    settings = ma.fields.Dict()


class QrArgs(ma.Schema):
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(["json", "png"]))


class QrSchema(ma.Schema):
    qr = ma.fields.String(metadata={"description": "The code itself (what the QR encodes)."})
    data_url = ma.fields.String(metadata={"description": "A PNG of the QR, as a data: URL."})
    expires_at = ma.fields.DateTime()


class PairCodeArgs(ma.Schema):
    phone = ma.fields.String(
        required=True,
        metadata={"description": "The number of the phone to link, as people type it."},
    )


class PairCodeSchema(ma.Schema):
    code = ma.fields.String(
        metadata={"description": "Enter it on the phone: Linked devices > Link with phone number."}
    )
    expires_at = ma.fields.DateTime(
        metadata={
            "description": "When the code stops working; the session then stops (status "
            "`stopped`, reason `qr_expired…`) and must be started again."
        }
    )


class StatusChangeSchema(ma.Schema):
    status = ma.fields.String()
    reason = ma.fields.String()
    at = ma.fields.DateTime()


class SessionMeSchema(ma.Schema):
    jid = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    push_name = ma.fields.String(allow_none=True)


class DevicesSchema(ma.Schema):
    jid = ma.fields.String()
    devices = ma.fields.List(ma.fields.String())


@blp.route("")
class Sessions(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(SessionSchema))
    def get(self, args):
        """List my sessions (admins: everyone's)."""
        return paginate(
            sessions.visible(), WaSession.id, cursor=args["cursor"], limit=args["limit"]
        )

    @blp.requires("sessions:manage")
    @blp.arguments(SessionSchema)
    @blp.response(201, SessionSchema)
    def post(self, body):
        """Create a session; with auto_start it starts connecting (and shows a QR) at once."""
        return sessions.create(current_principal(), **body)


@blp.route("/<string:session_id>")
class SessionById(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, SessionSchema)
    def get(self, session_id):
        """One session with its status, last error and whether the runtime is up."""
        return sessions.get(session_id)

    @blp.requires("sessions:manage")
    @blp.arguments(SessionUpdateSchema)
    @blp.response(200, SessionSchema)
    def patch(self, body, session_id):
        """Change label, auto-start or settings."""
        return sessions.update(sessions.get(session_id), principal=current_principal(), **body)

    @blp.requires("sessions:manage")
    @blp.response(204)
    def delete(self, session_id):
        """Delete the session and its device store (it disappears from the API at once)."""
        sessions.delete(sessions.get(session_id))


def _action(name: str, doc: str):
    def post(self, session_id):
        return getattr(sessions, name)(sessions.get(session_id))

    post.__doc__ = doc
    post.__name__ = "post"
    return post


@blp.route("/<string:session_id>/start")
class Start(MethodView):
    post = blp.requires("sessions:manage")(
        blp.response(202, SessionSchema)(
            _action("start", "Start connecting (a QR appears if the session is not paired).")
        )
    )


@blp.route("/<string:session_id>/stop")
class Stop(MethodView):
    post = blp.requires("sessions:manage")(
        blp.response(202, SessionSchema)(_action("stop", "Disconnect; the device stays paired."))
    )


@blp.route("/<string:session_id>/restart")
class Restart(MethodView):
    post = blp.requires("sessions:manage")(
        blp.response(202, SessionSchema)(_action("restart", "Disconnect and connect again."))
    )


@blp.route("/<string:session_id>/logout")
class Logout(MethodView):
    @blp.requires("sessions:manage")
    @blp.response(204)
    def post(self, session_id):
        """Unlink the device from the phone; pairing again needs a new QR."""
        sessions.logout(sessions.get(session_id))


@blp.route("/<string:session_id>/qr")
class Qr(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(QrArgs, location="query")
    @blp.response(200, QrSchema)
    @blp.alt_response(409, description="No QR to show (stopped, or already paired).")
    @blp.alt_response(
        503,
        description="Still starting after a few seconds (code "
        "session_starting, with Retry-After), or the runtime is down.",
    )
    def get(self, args, session_id):
        """The QR code to scan with WhatsApp > Linked devices, while status is qr.

        Right after the session is created or started, this waits a few seconds for its
        first QR code."""
        session = sessions.qr(sessions.get(session_id))
        png = sessions.qr_png(session.qr)
        if args["format"] == "png":
            return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})
        return {
            "qr": session.qr,
            "expires_at": session.qr_expires_at,
            "data_url": "data:image/png;base64," + base64.b64encode(png).decode(),
        }


@blp.route("/<string:session_id>/pair-code")
class PairCode(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(PairCodeArgs)
    @blp.response(200, PairCodeSchema)
    def post(self, body, session_id):
        """Link by phone number instead of a QR: returns the code to type on the phone."""
        return sessions.pair_code(sessions.get(session_id), body["phone"])._asdict()


@blp.route("/<string:session_id>/status-history")
class StatusHistory(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, StatusChangeSchema(many=True))
    def get(self, session_id):
        """Every status the session went through, newest first (last 200)."""
        session = sessions.get(session_id)
        return db.session.scalars(
            sa.select(SessionStatusChange)
            .where(SessionStatusChange.session_id == session.id)
            .order_by(SessionStatusChange.id.desc())
            .limit(200)
        ).all()


@blp.route("/<string:session_id>/me")
class Me(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, SessionMeSchema)
    def get(self, session_id):
        """The WhatsApp account this session is paired as."""
        session = sessions.get(session_id)
        if not session.jid:
            raise sessions.NotPaired()
        return session


@blp.route("/<string:session_id>/devices")
class Devices(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, DevicesSchema)
    def get(self, session_id):
        """The account's devices as WhatsApp reports them (needs a connected session)."""
        session = sessions.get(session_id)
        if not session.jid:
            raise sessions.NotPaired()
        info = live.user_info(session.id, [session.jid])
        return {"jid": session.jid, "devices": info[0].get("devices", []) if info else []}
