"""Calls."""

from __future__ import annotations

import logging
from typing import Any

from server.events import (
    CallReceived,
)
from server.whatsapp.neonize.common import _logged, _when

log = logging.getLogger(__name__)

class CallEvents:
    """Call conversion (mixed into ``Inbound``)."""

    def call(self, ev: Any) -> CallReceived:
        meta = ev.basicCallMeta
        caller = meta.callCreator if meta.callCreator.User else getattr(meta, "from")
        video = any(node.Tag == "video" for node in ev.data.Nodes)
        return CallReceived(call_id=meta.callID, caller=self.party(caller, meta.callCreatorAlt),
                            timestamp=_when(meta.timestamp), video=video)



class Calls:
    """The transport's call handlers."""

    def _on_call(self, client: Any, ev: Any) -> None:
        with _logged("call"):
            self.emit(self._inbound.call(ev))

