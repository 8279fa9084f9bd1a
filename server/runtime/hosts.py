"""Where a live session runs: the runtime's side of a session host.

Every live session is held through a host with one small interface (``start``,
``stop``, ``alive``, ``exit_reason``, ``transport``), so the runtime has one code path:

- ``ProcessHost``: the session runs in a child process (``session_host.py``), its
  transport reached through ``RemoteTransport``, a proxy with the transport's methods.
  A crash or a Go abort there ends that one process; the runtime sees ``alive()`` turn
  false and restarts the session. This is how neonize sessions run.
- ``InlineHost``: the transport runs in the runtime process itself. The sandbox runs so
  by default (hundreds of simulated sessions cost no processes); it can run in
  processes too (``KABAR_SESSION_PROCESSES``), which is how the tests drive the real
  path without WhatsApp.

Nothing here assumes all sessions live in one process or on one machine: a host holds
one session, and everything durable goes through the database.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from server.events import Event
from server.runtime.session_host import RECYCLE_EXIT
from server.runtime.wire import Channel, rebuild_error
from server.whatsapp.transport import Transport, TransportError

log = logging.getLogger(__name__)

# The transport class behind each name, as "module:Class", loaded inside the host.
FACTORIES = {
    "sandbox": "server.whatsapp.sandbox:SandboxTransport",
    "neonize": "server.whatsapp.neonize:NeonizeTransport",
}

# A host's emit: (event, done) -> None. ``done`` (may be None) is set once the event
# is stored; a process host passes one that acknowledges it to the child.
HostEmit = Callable[[Event, Any], None]


class SessionHost(Protocol):
    session_id: str
    transport: Transport

    def start(self) -> None: ...
    def stop(self, timeout: float) -> None: ...
    def alive(self) -> bool: ...
    def exit_reason(self) -> str: ...


class InlineHost:
    """The transport in this process."""

    recycle = False

    def __init__(self, session_id: str, transport: Transport):
        self.session_id = session_id
        self.transport = transport

    def start(self) -> None:
        self.transport.start()

    def stop(self, timeout: float) -> None:
        self.transport.stop()

    def alive(self) -> bool:
        return True

    def exit_reason(self) -> str:
        return ""


class RemoteTransport:
    """The transport of a session host process, called over its channel. Any method
    call is forwarded and waited for (``call_timeout``); a host that is gone answers
    TransportError ``session_not_running`` (retryable: the session restarts)."""

    def __init__(self, host: ProcessHost, name: str, call_timeout: float):
        self._host = host
        self.name = name
        self._call_timeout = call_timeout

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            timeout = 2.0 if method == "is_connected" else self._call_timeout
            return self._host.call(method, args, kwargs, timeout=timeout)

        call.__name__ = method
        return call


class _Ack:
    """``done`` for an event from a host process: tells the child it is stored."""

    def __init__(self, host: ProcessHost, ack_id: int):
        self.host, self.ack_id = host, ack_id

    def set(self) -> None:
        try:
            self.host.channel.send("ack", self.ack_id)
        except EOFError:
            pass  # the host is gone; WhatsApp redelivers to its successor


class ProcessHost:
    """One session in a child process, spoken to over a socket pair."""

    def __init__(
        self,
        *,
        session_id: str,
        transport_name: str,
        store_dir: Path,
        options: dict,
        emit: HostEmit,
        factory: str | None = None,
        call_timeout: float = 60.0,
        stop_timeout: float = 5.0,
        env: dict[str, str] | None = None,
    ):
        self.session_id = session_id
        self.factory = factory or FACTORIES[transport_name]
        self.store_dir = Path(store_dir)
        self.options = options
        self.emit = emit
        self.stop_timeout = stop_timeout
        self.env = env
        self.transport = RemoteTransport(self, transport_name, call_timeout)
        self.process: subprocess.Popen | None = None
        self.channel: Channel | None = None
        self.started_at = time.monotonic()
        self.start_error: str | None = None
        self.stopping = False
        self._calls: dict[int, list] = {}  # id -> [threading.Event, answer]
        self._calls_lock = threading.Lock()
        self._next_call = 0
        self._gone = threading.Event()  # the channel closed: no answer will come

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(self.env if self.env is not None else os.environ)
        env["KABAR_SESSION_ID"] = self.session_id
        # The child imports the same code as this process, and factories from the
        # current folder (a plugin's, or a test's).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_import_root(), os.getcwd(), env.get("PYTHONPATH")) if p
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.runtime.session_host", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            child.close()
        self.started_at = time.monotonic()
        self.channel = Channel(parent)
        self.channel.send(
            "start",
            {
                "factory": self.factory,
                "session_id": self.session_id,
                "store_dir": str(self.store_dir),
                "options": self.options,
                "stop_timeout": self.stop_timeout,
            },
        )
        threading.Thread(
            target=self._read, daemon=True, name=f"kabar-host-{self.session_id}"
        ).start()

    def stop(self, timeout: float) -> None:
        """Ask the process to stop its transport; kill it if it has not ended within
        ``timeout`` (its own bound on the transport's stop, plus a second)."""
        self.stopping = True
        if self.process is None:
            return
        try:
            if self.channel is not None and self.process.poll() is None:
                self.channel.send("stop")
        except EOFError:
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "session %s: its process did not stop within %ss; killing it",
                self.session_id,
                timeout,
            )
            self.process.kill()
            self.process.wait()
        self._close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def recycle(self) -> bool:
        """The transport asked for a fresh process (not a crash)."""
        return self.process is not None and self.process.poll() == RECYCLE_EXIT

    def exit_reason(self) -> str:
        if self.process is None or self.process.returncode is None:
            return ""
        code = self.process.returncode
        if self.start_error:
            return f"could not start: {self.start_error}"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = " (the Go runtime aborted)" if -code == signal.SIGABRT else ""
            return f"the session process was killed by {name}{why}"
        if code == RECYCLE_EXIT:
            return "the session process asked to be started afresh"
        if code == 2:  # how a Go fatal error ("concurrent map writes", panics) exits
            return "the session process ended with exit code 2 (a fatal error in Go)"
        return f"the session process ended with exit code {code}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # --- calls --------------------------------------------------------------------------

    def call(self, method: str, args: tuple, kwargs: dict, *, timeout: float) -> Any:
        if self._gone.is_set() or self.channel is None:
            raise TransportError(
                "The session's process is not running; it restarts by itself, try again shortly.",
                code="session_not_running",
            )
        with self._calls_lock:
            self._next_call += 1
            call_id = self._next_call
            slot: list = [threading.Event(), None]
            self._calls[call_id] = slot
        try:
            try:
                self.channel.send("call", call_id, method, args, kwargs)
            except EOFError:  # the process ended before its reader noticed
                slot[0].set()
            if not slot[0].wait(timeout):
                raise TransportError(
                    f"{method}: the session did not answer within {timeout:g} s; try again.",
                    code="timeout",
                )
        finally:
            with self._calls_lock:
                self._calls.pop(call_id, None)
        answer = slot[1]
        if answer is None:
            raise TransportError(
                "The session's process ended during the call; it "
                "restarts by itself, try again shortly.",
                code="session_not_running",
            )
        if answer[0] == "error":
            raise rebuild_error(*answer[2:])
        return answer[2]

    def _read(self) -> None:
        channel = self.channel
        while True:
            try:
                message = channel.recv()
            except EOFError:
                break
            kind = message[0]
            if kind in ("result", "error"):
                with self._calls_lock:
                    slot = self._calls.get(message[1])
                if slot is not None:
                    slot[1] = message
                    slot[0].set()
            elif kind == "event":
                _, ack_id, event = message
                try:
                    self.emit(event, _Ack(self, ack_id) if ack_id is not None else None)
                except Exception:
                    log.exception("session %s: could not take an event", self.session_id)
            elif kind == "start_failed":
                self.start_error = message[1]
        self._gone.set()
        with self._calls_lock:  # wake every waiting call: no answer will come
            for slot in self._calls.values():
                slot[0].set()

    def _close(self) -> None:
        if self.channel is not None:
            self.channel.close()


def _import_root() -> str:
    """The folder ``server`` is imported from, so the child imports the same code."""
    import server

    return str(Path(server.__file__).resolve().parent.parent)
