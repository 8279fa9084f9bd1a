"""Backfill: messages from WhatsApp's history sync, as ``MessageBackfilled``.

After a pairing, and after time offline, WhatsApp sends the linked device chunks of chat
history (whatsmeow ``events.HistorySync``, neonize ``HistorySyncEv``, its ``Data`` a
``HistorySync`` of conversations, each a list of ``WebMessageInfo``). Each message no
older than ``backfill_days`` is converted as a live one would be and emitted as
``MessageBackfilled``; the runtime stores it once per WhatsApp id (a message Kabar
already has is dropped there) and never hands it to workflows. Only chat messages are
backfilled: reactions, edits, revokes, votes and status updates in the history are not.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from server.events import MessageBackfilled, MessageReceived
from server.whatsapp.jids import GROUP_SERVER
from server.whatsapp.neonize.common import _logged
from server.whatsapp.neonize.jids import _jid
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.transport import TransportError

log = logging.getLogger(__name__)

# Sync types that carry chat messages (PUSH_NAME, INITIAL_STATUS_V3, NON_BLOCKING_DATA
# do not).
_WITH_MESSAGES = {"INITIAL_BOOTSTRAP", "FULL", "RECENT", "ON_DEMAND"}


def _empty_jid() -> Any:
    return _nz().N.JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)


class History:
    """The transport's history-sync handler."""

    def _on_history_sync(self, client: Any, ev: Any) -> None:
        with _logged("history_sync"):
            for event in self._backfill(ev.Data):
                self.emit(event)

    def _backfill(self, data: Any) -> list[MessageBackfilled]:
        days = self.settings.backfill_days
        kind = data.DESCRIPTOR.fields_by_name["syncType"].enum_type.values_by_number.get(
            data.syncType
        )
        if days <= 0 or kind is None or kind.name not in _WITH_MESSAGES:
            return []
        oldest = time.time() - days * 86400
        found = []
        for conversation in data.conversations:
            for item in conversation.messages:
                info = item.message
                if not info.HasField("message") or info.messageTimestamp < oldest:
                    continue
                try:
                    event = self._inbound.message(self._as_message(conversation.ID, info))
                except TransportError:
                    continue  # a chat id that is no JID (never seen; skip, not fail)
                if isinstance(event, MessageReceived):
                    found.append(MessageBackfilled(message=event.message))
        if found:
            log.info(
                "session %s: %d message(s) from WhatsApp's history sync (%s)",
                self.session_id,
                len(found),
                kind.name,
            )
        return found

    def _as_message(self, chat_id: str, info: Any) -> Any:
        """A ``WebMessageInfo`` of the history as the live ``Message`` event it was."""
        N = _nz().N
        key = info.key
        chat = _jid(key.remoteJID or chat_id)
        is_group = chat.Server == GROUP_SERVER
        if key.fromMe:
            me = self._identity
            sender = _jid(me.jid) if me is not None else _empty_jid()
        else:
            who = key.participant or info.participant if is_group else ""
            sender = _jid(who) if who else chat
        source = N.MessageSource(
            Chat=chat,
            Sender=sender,
            IsFromMe=key.fromMe,
            IsGroup=is_group,
            AddressingMode=N.PN,
            SenderAlt=_empty_jid(),
            RecipientAlt=_empty_jid(),
            BroadcastListOwner=_empty_jid(),
        )
        return N.Message(
            Info=N.MessageInfo(
                MessageSource=source,
                ID=key.ID,
                ServerID=0,
                Type="",
                Pushname=info.pushName,
                Timestamp=info.messageTimestamp * 1000,
                Category="",
                Multicast=False,
                MediaType="",
                Edit="",
            ),
            Message=info.message,
        )
