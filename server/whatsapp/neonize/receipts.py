"""Receipts and presence, both ways."""

from __future__ import annotations

import logging
import threading
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
        # Not SERVER_ERROR: neonize 0.5.2's Go side encodes "played-self" (our own phone
        # played a voice note) as SERVER_ERROR too, so it cannot mean "failed" (defect 8).
        # Any other value, known or not, is not a status of a message we sent.
        status = {R.DELIVERED: "delivered", R.READ: "read", R.PLAYED: "played"}.get(ev.Type)
        if status is None or not ev.MessageIDs:
            return None
        source = ev.MessageSource
        if source.IsGroup or source.Chat.Server == GROUP_SERVER:
            chat = self.party(source.Chat)
        else:
            chat = self.party(
                source.Chat, source.SenderAlt if source.Chat.User == source.Sender.User else None
            )
        return MessageStatus(
            message_ids=tuple(self.ids.to_kabar(i) for i in ev.MessageIDs),
            status=status,
            chat=chat,
            timestamp=_when(ev.Timestamp),
            reason="",
        )

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
        return PresenceUpdate(
            chat=who, sender=who, state="unavailable" if ev.Unavailable else "available"
        )


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
            client.mark_read(
                *[self._ids.to_wa(i) for i in message_ids],
                chat=_jid(chat),
                sender=_jid(sender or chat),
                receipt=_nz().enum.ReceiptType.READ,
            )
        except Exception as exc:
            raise _transport_error(exc, "mark_read") from exc

    def presence(self, chat: str, state: str) -> None:
        """composing / recording / paused in a chat (available / unavailable: the account).

        WhatsApp relays chat states only from an account that is available, and while a
        linked device is available the owner's phone gets no notifications. So, as
        whatsmeow's docs advise and WAHA does: "available" just before typing, and
        "unavailable" again at "paused" or after ``presence_idle_seconds`` without any
        (issue 12, defect 10)."""
        client = self._require_connected()
        enum = _nz().enum
        if state not in PRESENCE_STATES:
            raise TransportError(
                f"Unknown presence {state!r}.", code="invalid_presence", permanent=True
            )
        try:
            if state in ("available", "unavailable"):
                self._cancel_idle_timer()
                client.send_presence(getattr(enum.Presence, state.upper()))
                self._sent_available = state == "available"
                return
            if not self._sent_available:
                client.send_presence(enum.Presence.AVAILABLE)
                self._sent_available = True
            client.send_chat_presence(
                _jid(chat),
                enum.ChatPresence.CHAT_PRESENCE_PAUSED
                if state == "paused"
                else enum.ChatPresence.CHAT_PRESENCE_COMPOSING,
                enum.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO
                if state == "recording"
                else enum.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT,
            )
            if state == "paused":
                self._go_unavailable()
            else:
                self._arm_idle_timer()
        except Exception as exc:
            raise _transport_error(exc, "presence") from exc

    def _announce_available(self) -> None:
        """Once connected: available (WhatsApp then delivers presences and chat states),
        and unavailable again after the idle time, so the phone keeps notifying."""
        try:
            self._client.send_presence(_nz().enum.Presence.AVAILABLE)
            self._sent_available = True
            self._arm_idle_timer()
        except Exception as exc:
            log.info("session %s: could not send presence: %s", self.session_id, exc)

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        timer = threading.Timer(self.settings.presence_idle_seconds, self._go_unavailable)
        timer.daemon = True
        timer.name = f"kabar-neonize-idle-{self.session_id}"
        self._idle_timer = timer
        timer.start()

    def _cancel_idle_timer(self) -> None:
        timer, self._idle_timer = self._idle_timer, None
        if timer is not None:
            timer.cancel()

    def _go_unavailable(self) -> None:
        self._cancel_idle_timer()
        with self._lock:
            client = self._client if self._connected and not self._stopping.is_set() else None
        if client is None or not self._sent_available:
            return
        try:
            client.send_presence(_nz().enum.Presence.UNAVAILABLE)
            self._sent_available = False
        except Exception as exc:
            log.info("session %s: could not send presence: %s", self.session_id, exc)
