"""Transports that misbehave on purpose, loaded by name inside a session host process
(``ProcessHost(factory="tests.server.runtime.transports:...")``)."""

from __future__ import annotations

import os
import threading
import time

from server.events import SessionStatus
from server.whatsapp.sandbox import SandboxTransport


class HangingStop(SandboxTransport):
    """A sandbox whose stop() never returns, as a Go Stop blocked in a dial."""

    def stop(self) -> None:
        threading.Event().wait()


class Aborting(SandboxTransport):
    """A sandbox whose ``abort()`` ends its process the way a Go fatal error does."""

    def abort(self) -> None:
        os.abort()


class Recycling(SandboxTransport):
    """Asks for a fresh process once connected (as neonize does when a leak is bounded)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.recycle_requested = threading.Event()

    def recycle(self) -> None:
        self.recycle_requested.set()


class SlowStart(SandboxTransport):
    def start(self) -> None:
        self.emit(SessionStatus(status="connecting", reason="slow"))
        time.sleep(0.2)
        super().start()
