"""Who an event is about: JIDs as Parties, with the phone and LID behind each."""

from __future__ import annotations

import logging
from typing import Any

from server.events import (
    Party,
)
from server.whatsapp.jids import GROUP_SERVER
from server.whatsapp.neonize.jids import _is_lid, _is_user, _jid_str
from server.whatsapp.transport import (
    Identity,
)

log = logging.getLogger(__name__)


def _me_party(me: Identity) -> Party:
    return Party(jid=me.jid, phone=me.phone, lid=me.lid, name=me.push_name or None)


class Parties:
    """The party-resolving half of the inbound converter (LIDs learned from events)."""

    def party(self, jid: Any, alt: Any = None, name: str | None = None) -> Party:
        """A Party for a JID as WhatsApp gave it, with the phone and LID behind it: the
        phone of an @lid comes from the event's alternate JID first, then from neonize's
        LID store (only while connected; see ``NeonizeTransport._lookup_pn``)."""
        text = _jid_str(jid)
        if _is_lid(jid):
            phone = alt.User if _is_user(alt) else self._pn_of_lid.get(jid.User)
            if phone is None:
                phone = self.lookup_pn(jid)
            if phone:
                self._pn_of_lid[jid.User] = phone
            return Party(jid=text, phone=phone or None, lid=text, name=name or None)
        if _is_user(jid):
            lid = _jid_str(alt) if _is_lid(alt) else None
            if lid:
                self._pn_of_lid[alt.User] = jid.User
            return Party(jid=text, phone=jid.User, lid=lid, name=name or None)
        return Party(jid=text, name=name or None)

    def _source_parties(self, source: Any, push_name: str = "") -> tuple[Party, Party]:
        """(chat, sender) for a MessageSource: in a group the chat is the group and the
        sender the participant; in a one-to-one chat the chat is the other person."""
        sender = self.party(source.Sender, source.SenderAlt, None if source.IsFromMe else push_name)
        if source.IsGroup or source.Chat.Server == GROUP_SERVER:
            return self.party(source.Chat), sender
        if source.IsFromMe:
            return self.party(source.Chat, source.RecipientAlt), sender
        if source.Chat.User == source.Sender.User and source.Chat.Server == source.Sender.Server:
            return sender, sender
        return self.party(source.Chat), sender

    # messages
    def _learn(self, participants: Any) -> None:
        """LID -> phone pairs from a group's participant list, for later events that
        name those people by LID only."""
        for p in participants:
            lid = p.LID if _is_lid(p.LID) else p.JID if _is_lid(p.JID) else None
            pn = p.PhoneNumber if _is_user(p.PhoneNumber) else p.JID if _is_user(p.JID) else None
            if lid is not None and pn is not None:
                self._pn_of_lid[lid.User] = pn.User

    # receipts, presence, calls
