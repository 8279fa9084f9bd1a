"""Calls."""

from __future__ import annotations

import logging
from typing import Any

from server.events import (
    CallReceived,
)
from server.whatsapp.neonize.common import _logged, _when
from server.whatsapp.neonize.jids import _jid

log = logging.getLogger(__name__)


class CallEvents:
    """Call conversion (mixed into ``Inbound``)."""

    def call(self, ev: Any) -> CallReceived:
        meta = ev.basicCallMeta
        caller = meta.callCreator if meta.callCreator.User else getattr(meta, "from")
        video = any(node.Tag == "video" for node in ev.data.Nodes)
        return CallReceived(
            call_id=meta.callID,
            caller=self.party(caller, meta.callCreatorAlt),
            timestamp=_when(meta.timestamp),
            video=video,
        )


class Calls:
    """The transport's call handlers, and rejecting a call."""

    KEEP_OFFERS = 64  # ringing calls remembered for reject_call (a call rings a minute)

    def _on_call(self, client: Any, ev: Any) -> None:
        with _logged("call"):
            event = self._inbound.call(ev)
            meta = ev.basicCallMeta
            # whatsmeow's RejectCall needs the caller exactly as the offer named it (a
            # phone JID or an @lid); CallReceived may show the phone behind a LID.
            creator = meta.callCreator if meta.callCreator.User else getattr(meta, "from")
            with self._lock:
                self._offers[meta.callID] = creator
                while len(self._offers) > self.KEEP_OFFERS:
                    self._offers.pop(next(iter(self._offers)))
            self.emit(event)

    def reject_call(self, call_id: str, caller: str) -> None:
        """Decline a ringing call: the caller sees it declined. ``caller`` is the
        CallReceived's ``caller.jid``; the offer's own JID is used when this process
        saw it."""
        client = self._require_connected()
        with self._lock:
            creator = self._offers.get(call_id)
        jid = creator if creator is not None else _jid(caller)

        def reject() -> None:
            client.reject_call(jid, call_id)
            with self._lock:
                self._offers.pop(call_id, None)

        self._within(reject, "reject_call")
