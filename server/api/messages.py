"""/api/v1/sessions/{id}/messages: send (through the outbox), follow, cancel; history."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import jsonify, request, url_for
from flask.views import MethodView

from server import fields, inputs, outbox, sessions
from server.api.base import Blueprint, ErrorSchema, PageArgs, page_schema, paginate
from server.errors import ValidationFailed
from server.inputs import carries_media
from server.models import Message
from server.outbox import bulk
from server.outbox.schema import SendSpec
from server.whatsapp.jids import InvalidPhone, to_jid

blp = Blueprint(
    "messages",
    __name__,
    url_prefix="/api/v1/sessions",
    description="Send messages (queued in the outbox, paced, tracked) and read "
    "the history of a session's chats.",
)

IDEMPOTENCY_HEADER = "Idempotency-Key"


class MessageSchema(ma.Schema):
    id = ma.fields.String()
    wa_id = ma.fields.String(metadata={"description": "WhatsApp's message id."})
    direction = ma.fields.String(metadata={"description": "in or out"})
    chat_jid = ma.fields.String()
    chat_phone = ma.fields.String(allow_none=True)
    sender_jid = ma.fields.String()
    sender_phone = ma.fields.String(allow_none=True)
    sender_lid = ma.fields.String(allow_none=True)
    sender_name = ma.fields.String(allow_none=True)
    is_group = ma.fields.Boolean()
    from_me = ma.fields.Boolean()
    kind = ma.fields.String()
    text = ma.fields.String()
    # The transport's download handle (media keys) stays inside the gateway.
    media = ma.fields.Function(
        lambda m: {k: v for k, v in m.media.items() if k != "handle"} if m.media else None,
        metadata={"description": "mimetype, filename, size, sha256 once stored, download"},
    )
    location = ma.fields.Dict(allow_none=True)
    quoted_id = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    timestamp = ma.fields.DateTime()


class OutgoingSchema(ma.Schema):
    id = ma.fields.String()
    wa_id = ma.fields.String()
    session_id = ma.fields.String()
    to = ma.fields.String(attribute="to_jid")
    type = ma.fields.String(attribute="kind")
    status = ma.fields.String(
        metadata={
            "description": "queued, sending, sent, delivered, "
            "read, played, failed, cancelled or expired"
        }
    )
    reason = ma.fields.String(
        allow_none=True, metadata={"description": "Why it failed, was cancelled or expired."}
    )
    waiting = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why a queued message has not gone yet (pacing, quiet hours, cap)."
        },
    )
    priority = ma.fields.Function(lambda row: {0: "high", 9: "bulk"}.get(row.priority, "normal"))
    source = ma.fields.String()
    attempts = ma.fields.Integer()
    send_at = ma.fields.DateTime(allow_none=True)
    not_before = ma.fields.DateTime(allow_none=True)
    expires_at = ma.fields.DateTime(allow_none=True)
    broadcast_id = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    sent_at = ma.fields.DateTime(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)
    read_at = ma.fields.DateTime(allow_none=True)
    status_url = ma.fields.Function(
        lambda row: url_for("messages.OutgoingById", session_id=row.session_id, message_id=row.id)
    )


class MessageListArgs(PageArgs):
    chat = ma.fields.String(metadata={"description": "Only this chat: a phone or a JID."})
    direction = ma.fields.String(validate=ma.validate.OneOf(["in", "out"]))


class RescheduleSchema(ma.Schema):
    send_at = fields.AwareDateTime(allow_none=True)
    expires_at = fields.AwareDateTime(allow_none=True)


def _send_request() -> tuple[dict, object]:
    """The send spec from a JSON body, or from a multipart form with a 'file' part."""
    if request.mimetype == "multipart/form-data":
        spec: dict = {}
        if request.form.get("payload"):
            try:
                spec = inputs.load_json(request.form["payload"])
            except ValueError:
                raise ValidationFailed(errors={"payload": ["Not valid JSON."]}) from None
        spec.update({k: v for k, v in request.form.items() if k != "payload"})
        return spec, request.files.get("file")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed(
            "Send a JSON object (or a multipart form).",
            code="validation_error",
            errors={"json": ["Expected an object."]},
        )
    return body, None


@blp.route("/<string:session_id>/messages")
class Messages(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(MessageListArgs, location="query")
    @blp.response(200, page_schema(MessageSchema))
    def get(self, args, session_id):
        """Chat history, in and out, oldest first; follow next_cursor for newer ones."""
        session = sessions.get(session_id)
        query = sa.select(Message).where(Message.session_id == session.id)
        if args.get("chat"):
            try:
                query = query.where(Message.chat_jid == to_jid(args["chat"]))
            except InvalidPhone as exc:
                raise ValidationFailed(errors={"chat": [str(exc)]}) from None
        if args.get("direction"):
            query = query.where(Message.direction == args["direction"])
        return paginate(query, Message.seq, cursor=args["cursor"], limit=args["limit"])

    @blp.requires("messages:send")
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": SendSpec},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "payload": {
                                "type": "string",
                                "description": "The JSON fields, as text",
                            },
                        },
                    }
                },
            },
        },
        parameters=[
            {
                "in": "header",
                "name": IDEMPOTENCY_HEADER,
                "required": False,
                "schema": {"type": "string", "maxLength": 128},
                "description": "Repeat a request with the same key and it is sent once.",
            }
        ],
    )
    @blp.response(202, OutgoingSchema)
    @carries_media
    def post(self, session_id):
        """Queue a message: text, image, video, audio, voice, document, sticker, location,
        contacts or poll. Accepted means stored; follow status_url for its progress."""
        session = sessions.get(session_id)
        key = request.headers.get(IDEMPOTENCY_HEADER) or None
        if key is not None and len(key) > 128:
            raise ValidationFailed(errors={IDEMPOTENCY_HEADER: ["At most 128 characters."]})
        spec, upload = _send_request()
        row, created = outbox.send(session, spec, idempotency_key=key, upload=upload, grouped=True)
        headers = {
            "Location": url_for(
                "messages.OutgoingById", session_id=row.session_id, message_id=row.id
            )
        }
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return row, 202, headers


class BulkSendSchema(ma.Schema):
    messages = ma.fields.List(
        ma.fields.Raw(),
        required=True,
        metadata={
            "description": f"1 to {bulk.MAX_ITEMS} send requests (as POST .../messages takes "
            "them), each with an optional idempotency_key. Media by url or "
            "sha256 (the body is capped at KABAR_MAX_BODY_BYTES)."
        },
    )


class BulkErrorSchema(ma.Schema):
    status = ma.fields.Integer()
    code = ma.fields.String()
    message = ma.fields.String()
    errors = ma.fields.Dict()


class BulkItemSchema(ma.Schema):
    index = ma.fields.Integer(metadata={"description": "The item's place in messages."})
    id = ma.fields.String()
    wa_id = ma.fields.String()
    to = ma.fields.String()
    status = ma.fields.String(metadata={"description": "The message's status (queued…)."})
    replayed = ma.fields.Boolean(
        metadata={
            "description": "Its idempotency key was seen before: this is the message it made."
        }
    )
    error = ma.fields.Nested(
        BulkErrorSchema, metadata={"description": "Why this item was not queued (the others were)."}
    )


class BulkResultSchema(ma.Schema):
    accepted = ma.fields.Integer()
    rejected = ma.fields.Integer()
    results = ma.fields.List(ma.fields.Nested(BulkItemSchema))


@blp.route("/<string:session_id>/messages/bulk")
class BulkSend(MethodView):
    @blp.requires("messages:send")
    @blp.doc(
        requestBody={"required": True, "content": {"application/json": {"schema": BulkSendSchema}}},
        parameters=[
            {
                "in": "header",
                "name": IDEMPOTENCY_HEADER,
                "required": False,
                "schema": {"type": "string", "maxLength": 100},
                "description": "Keys the items that carry no idempotency_key as <key>:<index>.",
            }
        ],
        responses={
            "207": {
                "description": "Some items were rejected; see results.",
                "content": {"application/json": {"schema": BulkResultSchema}},
            }
        },
    )
    @blp.response(202, BulkResultSchema, description="Every item was queued (or replayed).")
    @blp.alt_response(
        422,
        description=f"messages is not a list of 1 to {bulk.MAX_ITEMS} items.",
        schema=ErrorSchema,
    )
    def post(self, session_id):
        """Queue many messages in one request: each item is validated and answered on its
        own (202 when all were queued, 207 when some were rejected, with each one's error);
        the queued ones are stored together before the answer."""
        session = sessions.get(session_id)
        key = request.headers.get(IDEMPOTENCY_HEADER) or None
        if key is not None and len(key) > 100:
            raise ValidationFailed(errors={IDEMPOTENCY_HEADER: ["At most 100 characters."]})
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or set(body) != {"messages"}:
            raise ValidationFailed(
                "Send a JSON object with one field, messages: a list of send requests.",
                errors={"json": ['Expected {"messages": [...]}.']},
            )
        answers = [
            a.to_json() for a in bulk.send_many(session, body["messages"], idempotency_key=key)
        ]
        rejected = sum("error" in a for a in answers)
        # Built here, not dumped through the schema: it is plain JSON already, and
        # dumping a thousand items costs more than storing them.
        response = jsonify(
            {"accepted": len(answers) - rejected, "rejected": rejected, "results": answers}
        )
        response.status_code = 207 if rejected else 202
        return response


@blp.route("/<string:session_id>/messages/<string:message_id>")
class OutgoingById(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, OutgoingSchema)
    def get(self, session_id, message_id):
        """An outgoing message's status (by Kabar id or WhatsApp id)."""
        return outbox.get(sessions.get(session_id), message_id)

    @blp.requires("messages:send")
    @blp.arguments(RescheduleSchema)
    @blp.response(200, OutgoingSchema)
    def patch(self, body, session_id, message_id):
        """Reschedule a queued message (send_at) or change its expiry (null clears it)."""
        row = outbox.get(sessions.get(session_id), message_id)
        return outbox.reschedule(
            row,
            send_at=body.get("send_at"),
            expires_at=body.get("expires_at"),
            clear_expiry="expires_at" in body and body["expires_at"] is None,
        )


@blp.route("/<string:session_id>/messages/<string:message_id>/cancel")
class Cancel(MethodView):
    @blp.requires("messages:send")
    @blp.response(200, OutgoingSchema)
    def post(self, session_id, message_id):
        """Cancel a message that is still queued."""
        return outbox.cancel(outbox.get(sessions.get(session_id), message_id))


@blp.route("/<string:session_id>/messages/<string:message_id>/retry")
class Retry(MethodView):
    @blp.requires("messages:send")
    @blp.response(200, OutgoingSchema)
    def post(self, session_id, message_id):
        """Queue a failed or expired message again (same WhatsApp id)."""
        return outbox.retry(outbox.get(sessions.get(session_id), message_id))
