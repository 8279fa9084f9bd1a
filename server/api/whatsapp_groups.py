"""/api/v1/sessions/{id}/groups: the WhatsApp groups a session is in.

Groups live on WhatsApp, not in the gateway: every call here is a runtime command
answered by the live transport (503 while the runtime or the session is down). Sending
to a group needs nothing here: POST /messages takes a group JID (or its name) as ``to``.
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from server import sessions
from server.api.base import Blueprint
from server.chats import remember_names
from server.errors import NotFound
from server.runtime import commands, live
from server.whatsapp.jids import parse_group_jid, parse_participants

blp = Blueprint(
    "wa_groups",
    __name__,
    url_prefix="/api/v1/sessions",
    description="WhatsApp groups of a session: list, create, settings, invite "
    "links, participants, leave.",
)

ROUTE = "/<string:session_id>/groups"
GROUP_ROUTE = f"{ROUTE}/<string:group_jid>"
# Transport codes that mean "no such thing" rather than "not allowed now".
NOT_FOUND_CODES = {"group_not_found", "invite_link_invalid"}


def _people(targets: list[str]) -> list[str]:
    return parse_participants(targets, current_app.config["KABAR"]["PHONE_REGION"])


def _call(session, kind: str, **payload):
    """Run a group command; a group or link WhatsApp does not know is a 404."""
    try:
        return live.group(session.id, kind, **payload)
    except commands.CommandFailed as exc:
        if exc.code in NOT_FOUND_CODES:
            raise NotFound(exc.message, code=exc.code) from None
        raise


def _with_names(session, groups: list[dict]) -> list[dict]:
    """Keep each group's subject for the chat list, which only sees messages."""
    remember_names(session.id, {g["jid"]: g["name"] for g in groups if g.get("name")})
    return groups


class WaParticipantSchema(ma.Schema):
    jid = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    is_admin = ma.fields.Boolean()
    is_super_admin = ma.fields.Boolean(metadata={"description": "The group's creator."})


class WaGroupSchema(ma.Schema):
    jid = ma.fields.String(metadata={"description": "120363…@g.us; use it as `to` to send."})
    name = ma.fields.String()
    topic = ma.fields.String(metadata={"description": "The group's description."})
    owner = ma.fields.String(allow_none=True)
    announce = ma.fields.Boolean(metadata={"description": "Only admins may send."})
    locked = ma.fields.Boolean(metadata={"description": "Only admins may edit the info."})
    size = ma.fields.Function(lambda g: len(g.get("participants") or []))
    participants = ma.fields.List(ma.fields.Nested(WaParticipantSchema))


class WaGroupCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 100))
    participants = ma.fields.List(
        ma.fields.String(),
        load_default=list,
        validate=ma.validate.Length(0, 1023),
        metadata={"description": "Phones as people type them, or JIDs."},
    )


class WaGroupUpdateSchema(ma.Schema):
    name = ma.fields.String(validate=ma.validate.Length(1, 100))
    topic = ma.fields.String(validate=ma.validate.Length(0, 2048))
    announce = ma.fields.Boolean(metadata={"description": "Only admins may send."})
    locked = ma.fields.Boolean(metadata={"description": "Only admins may edit the info."})

    @ma.validates_schema
    def _something(self, data, **_kwargs):
        if not data:
            raise ma.ValidationError("Give at least one of name, topic, announce, locked.")


class InviteLinkSchema(ma.Schema):
    link = ma.fields.String(metadata={"description": "https://chat.whatsapp.com/…"})


class GroupJoinSchema(ma.Schema):
    link = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 256),
        metadata={"description": "An invite link (https://chat.whatsapp.com/…) or its code."},
    )


class ParticipantsChangeSchema(ma.Schema):
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(live.PARTICIPANT_ACTIONS))
    participants = ma.fields.List(
        ma.fields.String(),
        required=True,
        validate=ma.validate.Length(1, 256),
        metadata={"description": "Phones as people type them, or JIDs."},
    )


class ParticipantResultSchema(ma.Schema):
    jid = ma.fields.String()
    ok = ma.fields.Boolean()
    error = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "Why not: already_participant, not_participant, not_on_whatsapp, "
            "not_allowed, use_leave, or WhatsApp's own code."
        },
    )


class ParticipantResultsSchema(ma.Schema):
    results = ma.fields.List(ma.fields.Nested(ParticipantResultSchema))


@blp.route(ROUTE)
class Groups(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, WaGroupSchema(many=True))
    def get(self, session_id):
        """The groups the session is in, as WhatsApp lists them now."""
        session = sessions.get(session_id)
        return _with_names(session, _call(session, live.GROUPS))

    @blp.requires("sessions:manage")
    @blp.arguments(WaGroupCreateSchema)
    @blp.response(201, WaGroupSchema)
    def post(self, body, session_id):
        """Create a group; the session is its creator and admin. People WhatsApp cannot
        add (not on WhatsApp, privacy settings) are left out: compare participants."""
        session = sessions.get(session_id)
        people = _people(body["participants"])
        return _with_names(
            session, [_call(session, live.GROUP_CREATE, name=body["name"], participants=people)]
        )[0]


@blp.route(GROUP_ROUTE)
class GroupById(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, WaGroupSchema)
    def get(self, session_id, group_jid):
        """One group with its settings and participants (the session must be in it)."""
        session = sessions.get(session_id)
        jid = parse_group_jid(group_jid)
        return _with_names(session, [_call(session, live.GROUP_INFO, jid=jid)])[0]

    @blp.requires("sessions:manage")
    @blp.arguments(WaGroupUpdateSchema)
    @blp.response(200, WaGroupSchema)
    def patch(self, body, session_id, group_jid):
        """Rename, describe, or change who may send (announce) and edit (locked).
        Settings are applied one by one: if one fails, the earlier ones stay."""
        session = sessions.get(session_id)
        jid = parse_group_jid(group_jid)
        return _with_names(session, [_call(session, live.GROUP_UPDATE, jid=jid, **body)])[0]


@blp.route(f"{GROUP_ROUTE}/invite-link")
class InviteLink(MethodView):
    @blp.requires("sessions:manage")
    @blp.response(200, InviteLinkSchema)
    def get(self, session_id, group_jid):
        """The group's invite link (admins only). Anyone with it can join."""
        session = sessions.get(session_id)
        jid = parse_group_jid(group_jid)
        return {"link": _call(session, live.GROUP_INVITE_LINK, jid=jid, reset=False)}


@blp.route(f"{GROUP_ROUTE}/invite-link/reset")
class InviteLinkReset(MethodView):
    @blp.requires("sessions:manage")
    @blp.response(200, InviteLinkSchema)
    def post(self, session_id, group_jid):
        """A new invite link; the old one stops working."""
        session = sessions.get(session_id)
        jid = parse_group_jid(group_jid)
        return {"link": _call(session, live.GROUP_INVITE_LINK, jid=jid, reset=True)}


@blp.route(f"{ROUTE}/join")
class Join(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(GroupJoinSchema)
    @blp.response(200, WaGroupSchema)
    def post(self, body, session_id):
        """Join a group by its invite link; answers the group."""
        session = sessions.get(session_id)
        return _with_names(session, [_call(session, live.GROUP_JOIN, link=body["link"])])[0]


@blp.route(f"{GROUP_ROUTE}/participants")
class Participants(MethodView):
    @blp.requires("sessions:manage")
    @blp.arguments(ParticipantsChangeSchema)
    @blp.response(200, ParticipantResultsSchema)
    def post(self, body, session_id, group_jid):
        """Add, remove, promote or demote participants (admins only). Each one has its own
        result: one that cannot be changed does not stop the others."""
        session = sessions.get(session_id)
        jid = parse_group_jid(group_jid)
        people = _people(body["participants"])
        return {
            "results": _call(
                session,
                live.GROUP_PARTICIPANTS,
                jid=jid,
                action=body["action"],
                participants=people,
            )
        }


@blp.route(f"{GROUP_ROUTE}/leave")
class Leave(MethodView):
    @blp.requires("sessions:manage")
    @blp.response(204)
    def post(self, session_id, group_jid):
        """Leave the group. Its chat history stays in the gateway."""
        session = sessions.get(session_id)
        _call(session, live.GROUP_LEAVE, jid=parse_group_jid(group_jid))
