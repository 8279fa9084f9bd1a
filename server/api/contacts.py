"""/api/v1/sessions/{id}/contacts: the session's contacts, and people looked up on
WhatsApp through it.

The contact list is the gateway's own (``server.directory``: the address book sync and
every private chat), so listing it and ``in_contacts`` need no live client. Whether a
number is on WhatsApp, a picture or an about text is a runtime command answered by the
live transport (503 while the runtime or the session is down). Check numbers before a
broadcast: sending to numbers that are not on WhatsApp is wasted and looks like spam to
WhatsApp.
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from server import contacts, directory, sessions
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.errors import NotFound
from server.models import Contact as ContactRow
from server.runtime import live
from server.whatsapp.jids import parse_person, phone_of

blp = Blueprint(
    "contacts",
    __name__,
    url_prefix="/api/v1/sessions",
    description="Look people up through a session: is a number on WhatsApp, "
    "profile picture, about and devices; the session's own contact "
    "list.",
)

ROUTE = "/<string:session_id>/contacts"
CHECK_MAX = 100


def _region() -> str:
    return current_app.config["KABAR"]["PHONE_REGION"]


def _person(text: str) -> str:
    return parse_person(text, _region())


class ContactCheckSchema(ma.Schema):
    phones = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(1, 64)),
        required=True,
        validate=ma.validate.Length(1, CHECK_MAX),
        metadata={"description": f"Up to {CHECK_MAX} numbers as people type them (or JIDs)."},
    )


class ContactCheckResultSchema(ma.Schema):
    query = ma.fields.String(metadata={"description": "The number as it was given."})
    phone = ma.fields.String(allow_none=True, metadata={"description": "Normalised: 628…"})
    jid = ma.fields.String(allow_none=True, metadata={"description": "Null if not on WhatsApp."})
    registered = ma.fields.Boolean(metadata={"description": "On WhatsApp (asks WhatsApp)."})
    in_contacts = ma.fields.Boolean(
        metadata={
            "description": "One of this session's contacts: in its address book, or someone it "
            "had a private chat with (the gateway's own list; see GET …/contacts)."
        }
    )
    saved = ma.fields.Boolean(
        metadata={"description": "In the phone's own address book, as the transport synced it."}
    )
    name = ma.fields.String(
        allow_none=True,
        metadata={"description": "The contact's name: as saved, else the name they show."},
    )
    error = ma.fields.String(
        allow_none=True,
        metadata={"description": "Why the query is not a phone number (then registered is false)."},
    )


class ContactCheckResultsSchema(ma.Schema):
    results = ma.fields.List(ma.fields.Nested(ContactCheckResultSchema))


class ContactPictureSchema(ma.Schema):
    jid = ma.fields.String()
    url = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The profile picture's URL (it expires), or null when there is none "
            "or the contact's privacy settings hide it."
        },
    )


class ContactSchema(ma.Schema):
    jid = ma.fields.String(
        metadata={"description": "628…@s.whatsapp.net, or an @lid while the number is unknown."}
    )
    phone = ma.fields.String(allow_none=True)
    name = ma.fields.String(
        allow_none=True, metadata={"description": "As saved in the address book."}
    )
    push_name = ma.fields.String(
        allow_none=True, metadata={"description": "The name the person shows on WhatsApp."}
    )
    saved = ma.fields.Boolean(metadata={"description": "In the phone's own address book."})
    source = ma.fields.String(
        metadata={
            "description": "chat (learnt from a private chat) or "
            "address_book (the transport's sync)."
        }
    )
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class ContactListArgs(PageArgs):
    q = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(1, 100),
        metadata={"description": "Part of a name or number."},
    )
    saved = ma.fields.Boolean(
        load_default=None,
        metadata={"description": "Only contacts in (true) or not in (false) the address book."},
    )


class ContactInfoSchema(ma.Schema):
    jid = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    in_contacts = ma.fields.Boolean(metadata={"description": "One of this session's contacts."})
    saved = ma.fields.Boolean(metadata={"description": "In the phone's own address book."})
    name = ma.fields.String(
        allow_none=True,
        metadata={"description": "The contact's name: as saved, else the name they show."},
    )
    status = ma.fields.String(allow_none=True, metadata={"description": "The 'about' text."})
    verified_name = ma.fields.String(allow_none=True)
    devices = ma.fields.List(ma.fields.String())


@blp.route(ROUTE)
class Contacts(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(ContactListArgs, location="query")
    @blp.response(200, page_schema(ContactSchema))
    def get(self, args, session_id):
        """The session's contacts: its address book (where the transport syncs one) and
        everyone it had a private chat with. From the gateway's store: no runtime needed."""
        session = sessions.get(session_id)
        return paginate(
            directory.contact_listing(session.id, q=args["q"], saved=args["saved"]),
            ContactRow.id,
            cursor=args["cursor"],
            limit=args["limit"],
        )


class ContactSyncSchema(ma.Schema):
    added = ma.fields.Integer(metadata={"description": "Saved contacts new to the gateway."})
    changed = ma.fields.Integer(metadata={"description": "Saved under a new name."})
    removed = ma.fields.Integer(metadata={"description": "No longer in the address book."})
    total = ma.fields.Integer(metadata={"description": "Contacts in the address book."})


@blp.route(f"{ROUTE}/sync")
class Sync(MethodView):
    @blp.requires("sessions:manage")
    @blp.response(200, ContactSyncSchema)
    def post(self, session_id):
        """Read the phone's address book through the session (a runtime call) and store
        it: saved contacts, their saved names, and who is no longer saved. Each change is
        a contact.updated event. 409 not_supported for a transport without one."""
        session = sessions.get(session_id)
        return directory.sync_address_book(session, live.contacts(session.id))


@blp.route(f"{ROUTE}/check")
class Check(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(ContactCheckSchema)
    @blp.response(200, ContactCheckResultsSchema)
    def post(self, body, session_id):
        """Which numbers are on WhatsApp, in the order given."""
        return {"results": contacts.check(sessions.get(session_id), body["phones"])}


class ContactIdsSchema(ma.Schema):
    query = ma.fields.String(metadata={"description": "The contact as it was given."})
    phone = ma.fields.String(allow_none=True, metadata={"description": "628…, or null."})
    jid = ma.fields.String(
        allow_none=True,
        metadata={"description": "The phone JID (…@s.whatsapp.net), or null when unknown."},
    )
    lid = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The LID (…@lid), WhatsApp's number-hiding id, or null when unknown."
        },
    )


@blp.route(f"{ROUTE}/<string:phone>/ids")
class ContactIds(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, ContactIdsSchema)
    def get(self, session_id, phone):
        """A contact's phone number and LID, each looked up from the other.

        Give a phone number (as people type it, or a JID) to learn its LID, or a LID
        (`…@lid`, as in a group's participants or an event's `sender.lid`) to learn the
        number behind it. Answered from what WhatsApp told this device (no message is
        sent); null when it does not know."""
        return contacts.ids(sessions.get(session_id), phone)


@blp.route(f"{ROUTE}/<string:phone>/picture")
class Picture(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, ContactPictureSchema)
    def get(self, session_id, phone):
        """A contact's profile picture URL, or null."""
        session = sessions.get(session_id)
        jid = _person(phone)
        return {"jid": jid, "url": live.profile_picture(session.id, jid)}


@blp.route(f"{ROUTE}/<string:phone>")
class Contact(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, ContactInfoSchema)
    def get(self, session_id, phone):
        """What WhatsApp says about a contact: about text and devices."""
        session = sessions.get(session_id)
        jid = _person(phone)
        info = live.user_info(session.id, [jid])
        if not info:
            raise NotFound(f"WhatsApp knows nothing about {phone!r}.", code="contact_not_found")
        phone = phone_of(jid)
        contact = directory.contacts_by_phone(session.id, [phone]).get(phone)
        fields = (
            contacts.contact_fields(contact)
            if contact is not None
            else {"in_contacts": False, "saved": False, "name": None}
        )
        return {"phone": phone, **info[0], **fields}
