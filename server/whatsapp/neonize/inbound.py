"""Inbound: neonize events -> server.events, composed by kind."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from server.whatsapp.neonize.calls import CallEvents
from server.whatsapp.neonize.groups import GroupEvents
from server.whatsapp.neonize.idmap import _IdMap
from server.whatsapp.neonize.messages import (
    MessageEvents,
)
from server.whatsapp.neonize.parties import Parties
from server.whatsapp.neonize.receipts import ReceiptEvents

log = logging.getLogger(__name__)


class Inbound(Parties, MessageEvents, GroupEvents, ReceiptEvents, CallEvents):
    """Turns neonize events into Kabar events. Pure conversion: the only calls out are
    ``lookup_pn`` (the guarded LID->phone look-up), ``decrypt_vote`` (the guarded
    whatsmeow poll-vote decryption) and the id map."""

    def __init__(
        self,
        ids: _IdMap,
        lookup_pn: Callable[[Any], str | None],
        decrypt_vote: Callable[[Any], Any | None],
    ):
        self.ids = ids
        self.lookup_pn = lookup_pn
        self.decrypt_vote = decrypt_vote
        # learned from SenderAlt/RecipientAlt and from group participant lists
        self._pn_of_lid: dict[str, str] = {}

    # parties
