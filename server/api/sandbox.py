"""/api/v1/sandbox: play the phone and the contacts of a sandbox session.

The sandbox never talks to WhatsApp; see server/whatsapp/sandbox.py.
"""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server import sandbox_controls, sessions
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.api.whatsapp_groups import ParticipantResultsSchema
from server.inputs import carries_media
from server.models import SandboxDelivery
from server.runtime import live
from server.sandbox_controls import InjectSchema

blp = Blueprint(
    "sandbox",
    __name__,
    url_prefix="/api/v1/sandbox/sessions",
    description="Sandbox sessions: scan the QR, speak, act on groups and vote "
    "as virtual contacts, inject faults. Never reaches WhatsApp.",
)

FROM = {"description": "The virtual contact's phone number, as people type it."}


class ScanSchema(ma.Schema):
    phone = ma.fields.String(
        load_default="6281100000000",
        metadata={"description": "The number the sandbox phone pairs as."},
    )
    push_name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))


class PairedSchema(ma.Schema):
    jid = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    push_name = ma.fields.String(allow_none=True)


class InjectedSchema(ma.Schema):
    status = ma.fields.String(
        metadata={"description": "delivered, or queued while the runtime is down"}
    )
    message_id = ma.fields.String(allow_none=True)


class ContactParticipantsSchema(ma.Schema):
    from_ = ma.fields.String(
        required=True,
        data_key="from",
        metadata={"description": "The virtual contact doing it, an admin of the group."},
    )
    name = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(0, 128),
        metadata={"description": "The contact's display name."},
    )
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(live.PARTICIPANT_ACTIONS))
    participants = ma.fields.List(
        ma.fields.String(),
        required=True,
        validate=ma.validate.Length(1, 256),
        metadata={
            "description": "Phones or JIDs; the session's own number adds or removes the session."
        },
    )


class ContactGroupUpdateSchema(ma.Schema):
    from_ = ma.fields.String(required=True, data_key="from", metadata=FROM)
    from_name = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(0, 128),
        metadata={"description": "The contact's display name."},
    )
    name = ma.fields.String(
        validate=ma.validate.Length(1, 100), metadata={"description": "The group's new name."}
    )
    topic = ma.fields.String(validate=ma.validate.Length(0, 2048))
    announce = ma.fields.Boolean(metadata={"description": "Only admins may send."})
    locked = ma.fields.Boolean(metadata={"description": "Only admins may edit the info."})

    @ma.validates_schema
    def _something(self, data, **_kwargs):
        if not set(data) & set(sandbox_controls.GROUP_FIELDS):
            raise ma.ValidationError("Give at least one of name, topic, announce, locked.")


class ChangedSchema(ma.Schema):
    changed = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "The settings that changed (setting the same value changes none)."
        },
    )


class VoteSchema(ma.Schema):
    from_ = ma.fields.String(required=True, data_key="from", metadata=FROM)
    name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    options = ma.fields.List(
        ma.fields.String(),
        required=True,
        validate=ma.validate.Length(0, 12),
        metadata={"description": "Names of the poll's options; [] takes the vote back."},
    )


class VotedSchema(ma.Schema):
    poll_id = ma.fields.String(metadata={"description": "WhatsApp's id of the poll."})
    voter = ma.fields.String()
    options = ma.fields.List(ma.fields.String())


class FaultSchema(ma.Schema):
    kind = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(["disconnect", "logout", "send_error", "crash"]),
        metadata={
            "description": "disconnect (then reconnect), logout (from the phone), send_error "
            "(the next `count` sends fail), crash (kills the runtime process)"
        },
    )
    count = ma.fields.Integer(load_default=1, validate=ma.validate.Range(1, 1000))


class CallSchema(ma.Schema):
    from_ = ma.fields.String(required=True, data_key="from", metadata=FROM)
    name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    video = ma.fields.Boolean(load_default=False)


class CallingSchema(ma.Schema):
    call_id = ma.fields.String()
    caller = ma.fields.String(metadata={"description": "The caller's JID."})


class HistoryMessageSchema(ma.Schema):
    from_ = ma.fields.String(
        required=True,
        data_key="from",
        metadata={
            "description": "The virtual contact whose chat it is (the sender, unless from_me)."
        },
    )
    name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    text = ma.fields.String(required=True, validate=ma.validate.Length(1, 65536))
    id = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(1, 128),
        metadata={"description": "WhatsApp's id; give one Kabar already has to see it dropped."},
    )
    timestamp = ma.fields.AwareDateTime(load_default=None)
    from_me = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Sent by the session's phone while Kabar was away."},
    )


class HistorySchema(ma.Schema):
    messages = ma.fields.List(
        ma.fields.Nested(HistoryMessageSchema), required=True, validate=ma.validate.Length(1, 500)
    )


class HistoryIdsSchema(ma.Schema):
    ids = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "The messages' WhatsApp ids, in order (duplicates included: the "
            "runtime drops what it already has)."
        },
    )


class ReceivedArgs(PageArgs):
    to = ma.fields.String(metadata={"description": "Only what this contact received."})


class ReceivedSchema(ma.Schema):
    id = ma.fields.Integer()
    wa_id = ma.fields.String()
    to = ma.fields.String(attribute="to_jid")
    kind = ma.fields.String()
    content = ma.fields.Dict(
        metadata={"description": "The message as the contact got it (text, caption, media, poll…)."}
    )
    received_at = ma.fields.DateTime()


@blp.route("/<string:session_id>/received")
class Received(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(ReceivedArgs, location="query")
    @blp.response(200, page_schema(ReceivedSchema))
    def get(self, args, session_id):
        """What the session sent to its virtual contacts, oldest first: the sandbox's
        side of the chats (follow next_cursor for newer)."""
        query = sandbox_controls.received(sessions.get(session_id), to=args.get("to"))
        return paginate(query, SandboxDelivery.id, cursor=args["cursor"], limit=args["limit"])


@blp.route("/<string:session_id>/scan")
class Scan(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(ScanSchema)
    @blp.response(200, PairedSchema)
    def post(self, body, session_id):
        """Scan the session's QR (or confirm its pair code) with the sandbox phone."""
        return sandbox_controls.scan(sessions.get(session_id), **body)


@blp.route("/<string:session_id>/messages")
class Inject(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(InjectSchema)
    @blp.response(201, InjectedSchema)
    @blp.alt_response(202, schema=InjectedSchema, description="Queued: the runtime is down.")
    @carries_media
    def post(self, body, session_id):
        """A virtual contact sends the session a message (text, media or location)."""
        status, message_id = sandbox_controls.say(
            sessions.get(session_id),
            sender=body["from_"],
            text=body["text"],
            name=body["name"],
            kind=body["kind"],
            media=body["media"],
            location=body["location"],
            quoted_id=body["quoted_id"],
            group=body["group"],
        )
        return {"status": status, "message_id": message_id}, 201 if message_id else 202


@blp.route("/<string:session_id>/groups/<string:group_jid>/participants")
class ContactParticipants(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(ContactParticipantsSchema)
    @blp.response(200, ParticipantResultsSchema)
    def post(self, body, session_id, group_jid):
        """A virtual contact (a group admin) adds, removes, promotes or demotes people,
        the session included: the session sees group.joined, group.left or
        group.participants with `by` that contact."""
        return {
            "results": sandbox_controls.contact_participants(
                sessions.get(session_id),
                sender=body["from_"],
                name=body["name"],
                group=group_jid,
                action=body["action"],
                participants=body["participants"],
            )
        }


@blp.route("/<string:session_id>/groups/<string:group_jid>")
class ContactGroupUpdate(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(ContactGroupUpdateSchema)
    @blp.response(200, ChangedSchema)
    def patch(self, body, session_id, group_jid):
        """A virtual contact changes the group's name, topic or settings: the session
        sees group.updated with `by` that contact."""
        changes = {k: body[k] for k in sandbox_controls.GROUP_FIELDS if k in body}
        return {
            "changed": sandbox_controls.contact_update_group(
                sessions.get(session_id),
                sender=body["from_"],
                name=body["from_name"],
                group=group_jid,
                changes=changes,
            )
        }


@blp.route("/<string:session_id>/polls/<string:poll_id>/votes")
class Votes(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(VoteSchema)
    @blp.response(201, VotedSchema)
    def post(self, body, session_id, poll_id):
        """A virtual contact votes in a poll the session sent (`poll_id`: the message's
        `wa_id` or `id`): the session sees poll.vote."""
        return sandbox_controls.vote(
            sessions.get(session_id),
            sender=body["from_"],
            name=body["name"],
            poll_id=poll_id,
            options=body["options"],
        )


@blp.route("/<string:session_id>/faults")
class Faults(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(FaultSchema)
    @blp.response(202)
    def post(self, body, session_id):
        """Inject a fault to see how your automation copes."""
        sandbox_controls.fault(sessions.get(session_id), **body)


@blp.route("/<string:session_id>/calls")
class Call(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(CallSchema)
    @blp.response(201, CallingSchema)
    def post(self, body, session_id):
        """A virtual contact calls the session (a call.received event)."""
        return sandbox_controls.call(
            sessions.get(session_id), sender=body["from_"], name=body["name"], video=body["video"]
        )


@blp.route("/<string:session_id>/history")
class History(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(HistorySchema)
    @blp.response(200, HistoryIdsSchema)
    def post(self, body, session_id):
        """WhatsApp's history sync, as after a reconnect: each message new to Kabar is
        stored and announced as message.backfilled; workflows never see them."""
        return {
            "ids": sandbox_controls.history(
                sessions.get(session_id),
                messages=[{**m, "from": m.pop("from_")} for m in body["messages"]],
            )
        }
