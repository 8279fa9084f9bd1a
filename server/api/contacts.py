"""/api/v1/sessions/{id}/contacts: look people up on WhatsApp through a session.

Each look-up is a runtime command answered by the live transport (503 while the
runtime or the session is down). Check numbers before a broadcast: sending to numbers
that are not on WhatsApp is wasted and looks like spam to WhatsApp.
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from server import sessions
from server.api.base import Blueprint
from server.errors import NotFound, ValidationFailed
from server.runtime import commands
from server.whatsapp.jids import GROUP_SERVER, InvalidPhone, phone_of, split_jid, to_jid

blp = Blueprint("contacts", __name__, url_prefix="/api/v1/sessions",
                description="Look people up through a session: is a number on WhatsApp, "
                            "profile picture, about and devices.")

ROUTE = "/<string:session_id>/contacts"
CHECK_MAX = 100


def _region() -> str:
    return current_app.config["KABAR"]["PHONE_REGION"]


def _person(text: str) -> str:
    """A person's JID from a phone as people type it or a JID; groups and junk are 422."""
    try:
        jid = to_jid(text, _region())
        if split_jid(jid)[1] == GROUP_SERVER:
            raise InvalidPhone(f"{text!r} is a group; see /groups for groups.")
    except InvalidPhone as exc:
        raise ValidationFailed(str(exc), code="invalid_phone",
                               errors={"phone": [str(exc)]}) from None
    return jid


def check(session, queries: list[str]) -> list[dict]:
    """Each query in order, with its number, JID and whether it is on WhatsApp. A query
    that is not a number answers registered false with an error, not a failed batch."""
    results, phones = [], {}
    for query in queries:
        try:
            phone = phone_of(to_jid(query, _region()))
            if phone is None:
                raise InvalidPhone(f"{query!r} is not a phone number.")
            results.append({"query": query, "phone": phone, "jid": None, "registered": False,
                            "error": None})
            phones[phone] = None
        except InvalidPhone as exc:
            results.append({"query": query, "phone": None, "jid": None, "registered": False,
                            "error": str(exc)})
    if phones:
        answers = commands.call("is_on_whatsapp", session_id=session.id,
                                payload={"phones": list(phones)})
        phones.update({a["query"]: a for a in answers})
    for result in results:
        answer = phones.get(result["phone"]) if result["phone"] else None
        if answer:
            result["jid"], result["registered"] = answer.get("jid"), bool(answer["registered"])
    return results


class ContactCheckSchema(ma.Schema):
    phones = ma.fields.List(ma.fields.String(validate=ma.validate.Length(1, 64)),
                            required=True, validate=ma.validate.Length(1, CHECK_MAX),
                            metadata={"description": f"Up to {CHECK_MAX} numbers as people "
                                                     "type them (or JIDs)."})


class ContactCheckResultSchema(ma.Schema):
    query = ma.fields.String(metadata={"description": "The number as it was given."})
    phone = ma.fields.String(allow_none=True, metadata={"description": "Normalised: 628…"})
    jid = ma.fields.String(allow_none=True, metadata={"description": "Null if not on WhatsApp."})
    registered = ma.fields.Boolean()
    error = ma.fields.String(allow_none=True, metadata={
        "description": "Why the query is not a phone number (then registered is false)."})


class ContactCheckResultsSchema(ma.Schema):
    results = ma.fields.List(ma.fields.Nested(ContactCheckResultSchema))


class ContactPictureSchema(ma.Schema):
    jid = ma.fields.String()
    url = ma.fields.String(allow_none=True, metadata={
        "description": "The profile picture's URL (it expires), or null when there is none "
                       "or the contact's privacy settings hide it."})


class ContactInfoSchema(ma.Schema):
    jid = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    status = ma.fields.String(allow_none=True, metadata={"description": "The 'about' text."})
    verified_name = ma.fields.String(allow_none=True)
    devices = ma.fields.List(ma.fields.String())


@blp.route(f"{ROUTE}/check")
class Check(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(ContactCheckSchema)
    @blp.response(200, ContactCheckResultsSchema)
    def post(self, body, session_id):
        """Which numbers are on WhatsApp, in the order given."""
        return {"results": check(sessions.get(session_id), body["phones"])}


class ContactIdsSchema(ma.Schema):
    query = ma.fields.String(metadata={"description": "The contact as it was given."})
    phone = ma.fields.String(allow_none=True, metadata={"description": "628…, or null."})
    jid = ma.fields.String(allow_none=True, metadata={
        "description": "The phone JID (…@s.whatsapp.net), or null when unknown."})
    lid = ma.fields.String(allow_none=True, metadata={
        "description": "The LID (…@lid), WhatsApp's number-hiding id, or null when "
                       "unknown."})


def ids(session, who: str) -> dict:
    """A contact's phone JID and LID, as far as this session's device knows them."""
    jid = _person(who)
    answer = commands.call("lid_lookup", session_id=session.id, payload={"targets": [jid]})
    return {**answer[0], "query": who}


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
        return ids(sessions.get(session_id), phone)


@blp.route(f"{ROUTE}/<string:phone>/picture")
class Picture(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, ContactPictureSchema)
    def get(self, session_id, phone):
        """A contact's profile picture URL, or null."""
        session = sessions.get(session_id)
        jid = _person(phone)
        return {"jid": jid, "url": commands.call("profile_picture", session_id=session.id,
                                                 payload={"target": jid})}


@blp.route(f"{ROUTE}/<string:phone>")
class Contact(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, ContactInfoSchema)
    def get(self, session_id, phone):
        """What WhatsApp says about a contact: about text and devices."""
        session = sessions.get(session_id)
        jid = _person(phone)
        info = commands.call("user_info", session_id=session.id, payload={"targets": [jid]})
        if not info:
            raise NotFound(f"WhatsApp knows nothing about {phone!r}.",
                           code="contact_not_found")
        return {"phone": phone_of(jid), **info[0]}
