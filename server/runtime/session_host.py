"""A session host: one WhatsApp session alone in a process of its own.

neonize's Go core keeps package-level maps without locks and aborts the whole process on
some errors (docs/neonize-notes.md), so each real session runs here, started, watched
and restarted by the runtime (``hosts.ProcessHost``). An abort in Go ends this process
and nothing else; everything a stopped client may have leaked (file descriptors, store
connections, goroutines) ends with it.

The process is lean on purpose: it imports the transport and this module, never the web
app or the database. It owns no state: events go to the runtime over the channel
(``wire.py``), which stores them; calls come from the runtime and are answered there.

Run as ``python -m server.runtime.session_host FD``, FD being its end of the socket
pair. It exits when told to stop, when the runtime's end closes, or with
``RECYCLE_EXIT`` when the transport asks for a fresh process.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from server.events import Event
from server.runtime.wire import Channel, error_message

log = logging.getLogger("kabar.session_host")

RECYCLE_EXIT = 75  # EX_TEMPFAIL: "start me again", without a crash's backoff


def load_factory(path: str) -> Any:
    """``"package.module:Class"`` -> the class."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class Host:
    def __init__(self, channel: Channel):
        self.channel = channel
        self.transport: Any = None
        self.calls = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kabar-host-call")
        self._acks: dict[int, threading.Event] = {}
        self._ack_lock = threading.Lock()
        self._next_ack = 0
        self._stop_timeout = 5.0
        self.done = threading.Event()
        self.exit_code = 0

    # --- events -----------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """The transport's ``emit``. An inbound message waits until the runtime stored it
        (or the runtime is gone: then this process ends and WhatsApp redelivers)."""
        if not event.stored_before_return:
            self._send("event", None, event)
            return
        with self._ack_lock:
            self._next_ack += 1
            ack_id, stored = self._next_ack, threading.Event()
            self._acks[ack_id] = stored
        self._send("event", ack_id, event)
        while not stored.wait(1.0):
            if self.done.is_set():
                return

    def _send(self, *message: Any) -> None:
        try:
            self.channel.send(*message)
        except EOFError:
            self.finish(0, "the runtime closed the channel")

    # --- the loop ---------------------------------------------------------------------

    def serve(self) -> int:
        kind, spec = self.channel.recv()
        assert kind == "start", kind
        self._stop_timeout = float(spec.get("stop_timeout", 5.0))
        factory = load_factory(spec["factory"])
        self.transport = factory(
            session_id=spec["session_id"],
            store_dir=Path(spec["store_dir"]),
            emit=self.emit,
            options=spec.get("options") or {},
        )
        recycle = getattr(self.transport, "recycle_requested", None)
        if recycle is not None:
            threading.Thread(
                target=self._watch_recycle, args=(recycle,), daemon=True, name="kabar-host-recycle"
            ).start()
        threading.Thread(target=self._read, daemon=True, name="kabar-host-read").start()
        self.calls.submit(self._start)
        self.done.wait()
        return self.exit_code

    def _start(self) -> None:
        try:
            self.transport.start()
        except Exception as exc:
            log.exception("the transport did not start")
            self._send("start_failed", f"{type(exc).__name__}: {exc}")
            self.finish(1, f"could not start: {exc}")

    def _read(self) -> None:
        while not self.done.is_set():
            try:
                message = self.channel.recv()
            except EOFError:
                self.finish(0, "the runtime closed the channel")
                return
            kind = message[0]
            if kind == "call":
                self.calls.submit(self._call, *message[1:])
            elif kind == "ack":
                with self._ack_lock:
                    stored = self._acks.pop(message[1], None)
                if stored is not None:
                    stored.set()
            elif kind == "stop":
                self._stop()
                return

    def _call(self, call_id: int, method: str, args: tuple, kwargs: dict) -> None:
        try:
            value = getattr(self.transport, method)(*args, **kwargs)
        except BaseException as exc:  # every failure is an answer
            self._send(*error_message(call_id, exc))
        else:
            self._send("result", call_id, value)

    def _stop(self, code: int = 0) -> None:
        """Stop the transport, bounded: a Go Stop that hangs must not keep the process."""
        stopper = threading.Thread(target=self._stop_transport, daemon=True, name="kabar-host-stop")
        stopper.start()
        stopper.join(self._stop_timeout)
        if stopper.is_alive():
            log.warning("the transport did not stop within %ss; exiting anyway", self._stop_timeout)
        self._send("stopped")
        self.finish(code, "stopped")

    def _stop_transport(self) -> None:
        try:
            self.transport.stop()
        except Exception:
            log.exception("the transport did not stop cleanly")

    def _watch_recycle(self, recycle: threading.Event) -> None:
        recycle.wait()
        if not self.done.is_set():
            log.warning("the transport asked for a fresh process")
            self._stop(RECYCLE_EXIT)

    def finish(self, code: int, why: str) -> None:
        if not self.done.is_set():
            log.info("session host ending: %s", why)
            self.exit_code = code
            self.done.set()


def main(argv: list[str]) -> int:
    # Go (and C) code writes to file descriptor 1 directly; send that to the log stream
    # instead of letting it interleave with anything else that reads our stdout.
    os.dup2(2, 1)
    session = os.environ.get("KABAR_SESSION_ID", "?")
    logging.basicConfig(
        level=os.environ.get("KABAR_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s %(levelname)s [session {session}] %(name)s: %(message)s",
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runtime decides when we stop
    channel = Channel(socket.socket(fileno=int(argv[1])))
    host = Host(channel)
    signal.signal(
        signal.SIGTERM,
        lambda *_: threading.Thread(
            target=host._stop, daemon=True, name="kabar-host-sigterm"
        ).start(),
    )
    code = host.serve()
    logging.shutdown()
    # Leave at once: Go threads and a transport's leftover threads must not keep us.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
