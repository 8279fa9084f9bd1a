"""NeonizeTransport: the parts, composed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.whatsapp.neonize.calls import Calls
from server.whatsapp.neonize.connection import Connection
from server.whatsapp.neonize.groups import Groups
from server.whatsapp.neonize.history import History
from server.whatsapp.neonize.idmap import IDS_FILE, _IdMap
from server.whatsapp.neonize.inbound import Inbound
from server.whatsapp.neonize.lookups import Lookups
from server.whatsapp.neonize.media import (
    MediaCalls,
)
from server.whatsapp.neonize.messages import (
    ReceivingMessages,
)
from server.whatsapp.neonize.pairing import Pairing
from server.whatsapp.neonize.receipts import Receipts
from server.whatsapp.neonize.send import Sending
from server.whatsapp.neonize.settings import Settings
from server.whatsapp.neonize.store import (
    new_neonize_client,
)
from server.whatsapp.transport import (
    Emit,
    Identity,
)

log = logging.getLogger(__name__)


class NeonizeTransport(
    Connection,
    Pairing,
    ReceivingMessages,
    History,
    Receipts,
    Calls,
    Groups,
    Lookups,
    Sending,
    MediaCalls,
):
    """A live WhatsApp device over neonize (see the module docstring for the hazards).

    ``client_factory`` is a seam for tests only (the runtime never passes it): a callable
    taking the same arguments as ``new_neonize_client`` and returning an object with the
    neonize ``NewClient`` methods this class calls.
    """

    name = "neonize"

    def __init__(
        self,
        *,
        session_id: str,
        store_dir: Path,
        emit: Emit,
        options: dict,
        client_factory: Callable[..., Any] | None = None,
    ):
        self.session_id = session_id
        self.store_dir = Path(store_dir)
        self.emit = emit
        self.settings = Settings.from_options(options or {})
        self._client_factory = client_factory or new_neonize_client
        self._ids = _IdMap(self.store_dir / IDS_FILE)
        self._inbound = Inbound(self._ids, self._lookup_pn, self._decrypt_vote)
        self._lock = threading.RLock()  # this object's state
        # Held around every Go call that aborts the process without a live client
        # (get_me, LID look-ups) and by stop() before it tears the client down.
        self._go_lock = threading.Lock()
        self._client: Any = None
        self._runner: threading.Thread | None = None
        self._stopping = threading.Event()
        self._first_qr = threading.Event()
        self._connected = False  # a Connected event seen, no Disconnected/LoggedOut since
        self._had_connection = False  # during the current connect() call
        self._identity: Identity | None = None
        self._qr_count = 0
        self._qr_timer: threading.Timer | None = None
        self._pairing_phone: str | None = None
        self._sent_available = False
        self._registered: dict[str, tuple[bool, float]] = {}
        self._offers: dict[str, Any] = {}  # ringing call id -> the offer's caller JID
        self._last_status = ""
        self._device: str | None = None  # our full device JID, user:device@server
        self._generation = 0  # start()s of this transport: part of the Go uuid
        self._connects = 0  # Go connect() calls in this process (defect 4)
        self._idle_timer: threading.Timer | None = None
        # Set when this transport wants a fresh process (a Go call that cannot be
        # stopped, a per-connect leak at its bound): the session host then exits and
        # the runtime starts a new one.
        self.recycle_requested = threading.Event()
