"""Chat per session: the chats, one chat's history with statuses, a send box (text, file,
location) and, for sandbox sessions, a panel to speak as a virtual contact.

Sending is ``outbox.send`` (the one send path), speaking is ``sandbox_controls.say``, the lists are
the chats service's ``chat_page`` and ``mark_read`` (server/chats.py), as the chats API.
"""

from __future__ import annotations

import base64
import uuid

import sqlalchemy as sa
from flask import current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from server import chats as chat_service
from server import outbox, sandbox_controls, sessions
from server.errors import ValidationFailed
from server.inputs import carries_media
from server.models import Message, OutboxMessage, db
from server.sandbox_controls import InjectSchema
from server.ui.base import UiBlueprint, back, form_values, load
from server.whatsapp.jids import parse_chat, phone_of

bp = UiBlueprint("chat", __name__, url_prefix="/sessions")

HISTORY = 100  # the newest messages of a chat shown
SOURCE = "dashboard"  # the outbox row's source, as message.sent events report it


def _chat(text: str) -> str:
    return parse_chat(text, current_app.config["KABAR"]["PHONE_REGION"])


def _kind_of(mimetype: str) -> str:
    major = (mimetype or "").split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")


def _history(session_id: str, jid: str) -> list[Message]:
    rows = db.session.scalars(
        sa.select(Message)
        .where(Message.session_id == session_id, Message.chat_jid == jid)
        .order_by(Message.seq.desc())
        .limit(HISTORY)
    ).all()
    return list(reversed(rows))


def _unsent(session_id: str, jid: str) -> list[OutboxMessage]:
    """Outgoing messages to this chat that are not in its history: queued, or failed."""
    return db.session.scalars(
        sa.select(OutboxMessage)
        .where(
            OutboxMessage.session_id == session_id,
            OutboxMessage.to_jid == jid,
            OutboxMessage.status.in_(("fetching", "queued", "sending", "failed", "expired")),
        )
        .order_by(OutboxMessage.seq.desc())
        .limit(20)
    ).all()[::-1]


@bp.route("/<string:session_id>/chat")
@bp.requires("sessions:read")
def index(session_id):
    session = sessions.get(session_id)
    chat = request.args.get("chat", "").strip()
    jid = _chat(chat) if chat else None
    messages = _history(session.id, jid) if jid else []
    unsent = _unsent(session.id, jid) if jid else []
    partial = request.args.get("partial")
    if partial == "messages":
        return render_template(
            "ui/chat/_messages.html", session=session, messages=messages, unsent=unsent, jid=jid
        )
    chats, _next = chat_service.chat_page(session.id, limit=50, q=request.args.get("q") or None)
    if partial == "chats":
        return render_template("ui/chat/_chats.html", session=session, chats=chats, jid=jid)
    chat_name = next((c["name"] for c in chats if c["jid"] == jid and c.get("name")), None)
    return render_template(
        "ui/chat/index.html",
        session=session,
        chats=chats,
        jid=jid,
        chat=chat,
        phone=_phone(jid),
        chat_name=chat_name,
        messages=messages,
        unsent=unsent,
        idempotency_key=str(uuid.uuid4()),
    )


def _phone(jid: str | None) -> str:
    """What to show and type for a chat: a person's number, else the JID (groups)."""
    if not jid:
        return ""
    try:
        return phone_of(jid) or jid
    except ValueError:
        return jid


def _send_spec() -> tuple[dict, object]:
    """The send request the form describes: text, a file (with a caption) or a location."""
    values = form_values()
    spec = {"to": values.get("to", ""), "text": values.get("text", "")}
    kind = values.get("kind", "text")
    upload = request.files.get("file")
    if kind == "file":
        if upload is None or not upload.filename:
            raise ValidationFailed(errors={"file": [_("Choose a file to send.")]})
        spec["type"] = _kind_of(upload.mimetype)
        return spec, upload
    if kind == "location":
        spec.update(
            type="location",
            location={
                "latitude": values.get("latitude"),
                "longitude": values.get("longitude"),
                "name": values.get("name"),
                "address": values.get("address"),
            },
        )
        spec.pop("text")
    return spec, None


@bp.route("/<string:session_id>/chat/send", methods=["POST"])
@carries_media
@bp.requires("messages:send")
def send(session_id):
    session = sessions.get(session_id)
    spec, upload = _send_spec()
    row, _created = outbox.send(
        session,
        spec,
        upload=upload,
        source=SOURCE,
        idempotency_key=request.form.get("idempotency_key") or None,
    )
    return redirect(url_for("ui.chat.index", session_id=session.id, chat=_phone(row.to_jid)), 303)


@bp.route("/<string:session_id>/chat/read", methods=["POST"])
@bp.requires("messages:send")
def read(session_id):
    session = sessions.get(session_id)
    answer = chat_service.mark_read(session, _chat(request.form.get("chat", "")))
    if answer["receipts"] == "not_sent":
        return back(
            _(
                "Marked read here; WhatsApp got no read receipts: %(why)s",
                why=answer["receipts_error"]["message"],
            ),
            category="warning",
        )
    return back(_("Marked read."))


@bp.route("/<string:session_id>/chat/say", methods=["POST"])
@carries_media
@bp.requires("sessions:manage")
def say(session_id):
    """A virtual contact of a sandbox session speaks (sandbox_controls.say, as the sandbox API)."""
    session = sessions.get(session_id)
    values = form_values()
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        values["media"] = {
            "data": base64.b64encode(upload.read()).decode(),
            "mimetype": upload.mimetype or "application/octet-stream",
            "filename": upload.filename,
        }
    body = load(InjectSchema(), values)
    status, _message_id = sandbox_controls.say(
        session, sender=body["from_"], name=body["name"], text=body["text"], media=body["media"]
    )
    if status == "queued":
        return back(
            _("The runtime is down: the message is queued and arrives when it is back."),
            category="warning",
        )
    return redirect(url_for("ui.chat.index", session_id=session.id, chat=body["from_"]), 303)
