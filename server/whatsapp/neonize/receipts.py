"""Receipts and presence, both ways."""

from __future__ import annotations

import logging
from typing import Any

from server.events import (
    MessageStatus,
    PresenceUpdate,
)
from server.whatsapp.jids import GROUP_SERVER
from server.whatsapp.neonize.common import _logged, _when
from server.whatsapp.neonize.errors import _transport_error
from server.whatsapp.neonize.jids import _jid
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.transport import (
    TransportError,
)

log = logging.getLogger(__name__)

PRESENCE_STATES = {"composing", "recording", "paused", "available", "unavailable"}


class ReceiptEvents:
    """Receipt and presence conversion (mixed into ``Inbound``)."""

    def receipt(self, ev: Any) -> MessageStatus | None:
        """delivered / read / played for messages this session sent; receipts about our
        own other devices (READ_SELF, SENDER…) and retries are not statuses."""
        R = _nz().N.Receipt
        status = {R.DELIVERED: "delivered", R.READ: "read", R.PLAYED: "played",
                  R.SERVER_ERROR: "failed"}.get(ev.Type)
        if status is None or not ev.MessageIDs:
            return None
        source = ev.MessageSource
        if source.IsGroup or source.Chat.Server == GROUP_SERVER:
            chat = self.party(source.Chat)
        else:
            chat = self.party(source.Chat, source.SenderAlt if
                              source.Chat.User == source.Sender.User else None)
        return MessageStatus(message_ids=tuple(self.ids.to_kabar(i) for i in ev.MessageIDs),
                             status=status, chat=chat, timestamp=_when(ev.Timestamp),
                             reason="WhatsApp reported a server error" if status == "failed"
                             else "")

    def chat_presence(self, ev: Any) -> PresenceUpdate:
        N = _nz().N
        chat, sender = self._source_parties(ev.MessageSource)
        if ev.State == N.ChatPresence.PAUSED:
            state = "paused"
        else:
            state = "recording" if ev.Media == N.ChatPresence.AUDIO else "composing"
        return PresenceUpdate(chat=chat, sender=sender, state=state)

    def presence(self, ev: Any) -> PresenceUpdate:
        who = self.party(ev.From)
        return PresenceUpdate(chat=who, sender=who,
                              state="unavailable" if ev.Unavailable else "available")



class Receipts:
    """The transport's receipts and presence."""

    def _on_receipt(self, client: Any, ev: Any) -> None:
        with _logged("receipt"):
            event = self._inbound.receipt(ev)
            if event is not None:
                self.emit(event)

    def _on_chat_presence(self, client: Any, ev: Any) -> None:
        with _logged("chat_presence"):
            self.emit(self._inbound.chat_presence(ev))

    def _on_presence(self, client: Any, ev: Any) -> None:
        with _logged("presence"):
            self.emit(self._inbound.presence(ev))

    def mark_read(self, chat: str, sender: str, message_ids: list[str]) -> None:
        client = self._require_connected()
        if not message_ids:
            return
        try:
            client.mark_read(*[self._ids.to_wa(i) for i in message_ids], chat=_jid(chat),
                             sender=_jid(sender or chat), receipt=_nz().enum.ReceiptType.READ)
        except Exception as exc:
            raise _transport_error(exc, "mark_read") from exc

    def presence(self, chat: str, state: str) -> None:
        """composing / recording / paused in a chat (available / unavailable: the account).
        WhatsApp only relays chat states from an account that has announced itself
        available, so that is sent once per connection first."""
        client = self._require_connected()
        enum = _nz().enum
        if state not in PRESENCE_STATES:
            raise TransportError(f"Unknown presence {state!r}.", code="invalid_presence",
                                 permanent=True)
        try:
            if state in ("available", "unavailable"):
                client.send_presence(getattr(enum.Presence, state.upper()))
                self._sent_available = state == "available"
                return
            if not self._sent_available:
                client.send_presence(enum.Presence.AVAILABLE)
                self._sent_available = True
            client.send_chat_presence(
                _jid(chat),
                enum.ChatPresence.CHAT_PRESENCE_PAUSED if state == "paused"
                else enum.ChatPresence.CHAT_PRESENCE_COMPOSING,
                enum.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO if state == "recording"
                else enum.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)
        except Exception as exc:
            raise _transport_error(exc, "presence") from exc

