"""Sending: Outbound -> waE2E.Message, sent once per Kabar id."""

from __future__ import annotations

import logging
import time
from typing import Any

from server.whatsapp.jids import GROUP_SERVER, USER_SERVER
from server.whatsapp.neonize.common import _when
from server.whatsapp.neonize.errors import _transport_error
from server.whatsapp.neonize.idmap import _IdMap
from server.whatsapp.neonize.jids import _is_user, _jid, _jid_str
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.neonize.media import (
    _MEDIA_TYPES,
    MEDIA_KINDS,
    _media_message,
    check_media,
)
from server.whatsapp.neonize.messages import (
    _vcard_name,
)
from server.whatsapp.neonize.preview import link_preview
from server.whatsapp.transport import (
    NotConnected,
    Outbound,
    SendResult,
    TransportError,
)

log = logging.getLogger(__name__)

ACTIONS = {"reaction", "edit", "revoke"}  # aimed at another message
SENDABLE = {"text", "location", "contacts", "poll"} | MEDIA_KINDS | ACTIONS


def _context(message: Outbound, ids: _IdMap, me: str | None) -> Any:
    """ContextInfo for mentions and a quoted reply (None if neither). WhatsApp renders a
    quote from ``stanzaID`` + ``participant`` + ``quotedMessage``; the participant is the
    quoted message's author: as given, else us for a message we sent, else the other
    person in a one-to-one chat."""
    E = _nz().E
    if not message.mentions and not message.quoted_id:
        return None
    context = E.ContextInfo(mentionedJID=list(message.mentions))
    if message.quoted_id:
        wa_id = ids.to_wa(message.quoted_id)
        participant = message.quoted_sender
        if not participant and wa_id != message.quoted_id:
            participant = me
        if not participant and not message.to.endswith("@" + GROUP_SERVER):
            participant = message.to
        context.stanzaID = wa_id
        if participant:
            context.participant = _jid_str(_jid(participant))
        context.quotedMessage.CopyFrom(E.Message(conversation=message.quoted_text or ""))
    return context


def _contacts_message(vcards: tuple[str, ...]) -> Any:
    """One vCard: a contactMessage; several: a contactsArrayMessage."""
    E = _nz().E
    if not vcards:
        raise TransportError(
            "A contacts message needs at least one vCard.", code="invalid_message", permanent=True
        )
    cards = [E.ContactMessage(displayName=_vcard_name(v) or "Contact", vcard=v) for v in vcards]
    if len(cards) == 1:
        return E.Message(contactMessage=cards[0])
    return E.Message(
        contactsArrayMessage=E.ContactsArrayMessage(
            displayName=f"{len(cards)} contacts", contacts=cards
        )
    )


def _attach_context(body: Any, context: Any) -> None:
    """Put the ContextInfo on whichever content ``body`` carries."""
    if context is None:
        return
    for descriptor, value in body.ListFields():
        if (
            descriptor.message_type is not None
            and "contextInfo" in descriptor.message_type.fields_by_name
        ):
            value.contextInfo.MergeFrom(context)
            return


class Sending:
    """The transport's send path."""

    # --- messages (the session's sender thread) ---------------------------------------

    def send(self, message: Outbound) -> SendResult:
        """Send once per ``message.message_id``: an id already sent (a retry after a crash
        or a lost answer) is answered from the id map and not sent again."""
        client = self._require_connected()
        if message.kind not in SENDABLE:
            raise TransportError(
                f"Cannot send a {message.kind!r} message.", code="unsupported_kind", permanent=True
            )
        earlier = self._ids.sent(message.message_id)
        if earlier is not None:
            log.info(
                "message %s was already sent as %s; not sending it again",
                message.message_id,
                earlier[0],
            )
            return SendResult(message_id=message.message_id, timestamp=earlier[1])
        chat = _jid(message.to)
        if message.kind not in ACTIONS:
            chat = self._check_recipient(client, chat)
        body = self._build(client, chat, message)
        try:
            response = client.send_message(chat, body)
        except Exception as exc:
            raise _transport_error(exc, "send") from exc
        sent_at = _when(response.Timestamp)
        wa_id = response.ID or message.message_id
        self._ids.record(message.message_id, wa_id, message.to, sent_at)
        if message.kind == "poll" and message.poll is not None:  # for naming votes
            self._ids.remember_poll(wa_id, list(message.poll.options))
        return SendResult(message_id=message.message_id, timestamp=sent_at)

    def _build(self, client: Any, chat: Any, message: Outbound) -> Any:
        """The waE2E message for an Outbound (uploading media first)."""
        E = _nz().E
        me = self._identity.jid if self._identity else None
        kind = message.kind
        if kind in ACTIONS:
            return self._action(client, chat, message, me)
        context = _context(message, self._ids, me)
        if kind == "text":
            preview = link_preview(message.text) if message.link_preview else {}
            if not preview and context is None:
                return E.Message(conversation=message.text)
            body = E.Message(
                extendedTextMessage=E.ExtendedTextMessage(text=message.text, **preview)
            )
        elif kind in MEDIA_KINDS:
            if message.media is None or not message.media.data:
                raise TransportError(
                    f"A {kind} message needs media bytes.", code="invalid_message", permanent=True
                )
            check_media(kind, message.media)
            media_type = getattr(_nz().enum.MediaType, _MEDIA_TYPES[kind])
            try:
                upload = client.upload(bytes(message.media.data), media_type)
            except Exception as exc:
                raise _transport_error(exc, "upload") from exc
            body = _media_message(kind, upload, message)
        elif kind == "location":
            if message.location is None:
                raise TransportError(
                    "A location message needs a location.", code="invalid_message", permanent=True
                )
            loc = message.location
            body = E.Message(
                locationMessage=E.LocationMessage(
                    degreesLatitude=loc.latitude,
                    degreesLongitude=loc.longitude,
                    name=loc.name or None,
                    address=loc.address or None,
                )
            )
        elif kind == "contacts":
            body = _contacts_message(message.vcards)
        else:
            body = self._poll(client, message)
        _attach_context(body, context)
        return body

    def _poll(self, client: Any, message: Outbound) -> Any:
        """Built by whatsmeow (through neonize): it also sets the message secret that
        voters' clients need to encrypt their votes."""
        poll = message.poll
        if poll is None or len(poll.options) < 2:
            raise TransportError(
                "A poll needs a question and at least two options.",
                code="invalid_message",
                permanent=True,
            )
        vote = _nz().enum.VoteType
        try:
            return client.build_poll_vote_creation(
                poll.question, list(poll.options), vote.MULTIPLE if poll.multiple else vote.SINGLE
            )
        except Exception as exc:
            raise _transport_error(exc, "poll") from exc

    def _action(self, client: Any, chat: Any, message: Outbound, me: str | None) -> Any:
        """Reaction, edit or revoke of ``message.quoted_id`` (WhatsApp's id for it)."""
        nz = _nz()
        if not message.quoted_id:
            raise TransportError(
                f"A {message.kind} needs the id of its target message.",
                code="invalid_message",
                permanent=True,
            )
        target = self._ids.to_wa(message.quoted_id)
        author = _jid(self._author(message, target, me))
        if message.kind == "reaction":
            try:
                return client.build_reaction(chat, author, target, message.text)
            except Exception as exc:
                raise _transport_error(exc, "reaction") from exc
        if message.kind == "edit":
            return nz.builder.build_edit(chat, target, nz.E.Message(conversation=message.text))
        # Not client.revoke_message/build_revoke: they call get_me(), which aborts the
        # process on a client without a Go session (notes §6). Our JID is known.
        if me is None:
            raise NotConnected("revoke: this session's own JID is not known yet.")
        return nz.builder.build_revoke(chat, author, target, _jid(me))

    def _author(self, message: Outbound, target: str, me: str | None) -> str:
        """Who wrote the target message, which the key of a reaction/revoke must name:
        as given, else us for a message this session sent, else the other person of a
        one-to-one chat. In a group nobody else can be guessed."""
        if message.quoted_sender:
            return message.quoted_sender
        if target != message.quoted_id or message.kind == "edit":
            if me is None:
                raise NotConnected(f"{message.kind}: this session's own JID is not known yet.")
            return me
        if not message.to.endswith("@" + GROUP_SERVER):
            return message.to
        raise TransportError(
            f"A {message.kind} in a group needs the sender of its target message.",
            code="invalid_message",
            permanent=True,
        )

    def _check_recipient(self, client: Any, chat: Any) -> Any:
        """The chat to send to: for a number, the JID WhatsApp answered for it (which
        may differ from the number as typed: Brazil's extra 9, Mexico's 1; defect 13).
        Refuse, permanently, a number WhatsApp says does not exist (the sandbox does the
        same; sending to unknown numbers also looks like spam). Answers are cached for
        an hour; a failed check does not stop the send."""
        if not self.settings.check_recipients or not _is_user(chat):
            return chat
        cached = self._registered.get(chat.User)
        if cached is None or time.monotonic() - cached[1] > 3600:
            try:
                answers = client.is_on_whatsapp(f"+{chat.User}")
            except Exception as exc:
                log.info("could not check whether %s is on WhatsApp: %s", chat.User, exc)
                return chat
            found = next((a for a in answers if a.IsIn), None)
            cached = (
                found is not None,
                time.monotonic(),
                found.JID.User if found is not None and _is_user(found.JID) else None,
            )
            self._registered[chat.User] = cached
        if not cached[0]:
            raise TransportError(
                f"{chat.User} is not on WhatsApp.", code="not_on_whatsapp", permanent=True
            )
        if cached[2] and cached[2] != chat.User:
            return _jid(f"{cached[2]}@{USER_SERVER}")
        return chat

    def star(self, chat: str, sender: str, message_id: str, starred: bool) -> None:
        """Starring is an app-state patch (whatsmeow ``BuildStar``, type regular_high).
        neonize 0.5.2's Go ``DecodePatchInfo`` compares the patch type by pointer, so
        every type decodes as "", and it has no case for regular_high at all: a star
        cannot be sent through it. Refused clearly instead of failing obscurely."""
        self._require_connected()
        raise TransportError(
            "Starring messages is not supported by the neonize transport "
            "(neonize 0.5.2 cannot send app-state patches).",
            code="not_supported",
            permanent=True,
        )
