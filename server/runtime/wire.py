"""The channel between the runtime and a session host process (``session_host.py``).

Frames are length-prefixed pickles over an anonymous Unix socket pair: both ends are
the same code run by the same user, and nothing else can reach the socket. Messages
are tuples whose first item names them:

runtime -> host   ("start", spec)  ("call", id, method, args, kwargs)  ("ack", id)
                  ("stop",)
host -> runtime   ("result", id, value)  ("error", id, kind, text, code, permanent)
                  ("event", ack_id | None, event)  ("stopped",)

An event with an ``ack_id`` (an inbound message) is answered with ("ack", id) once the
runtime has stored it; the host's transport callback waits for that, so WhatsApp is not
told "received" about a message Kabar has not saved.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
from typing import Any

from server.whatsapp.transport import TransportError

_HEADER = struct.Struct("!I")
MAX_FRAME = 256 * 1024 * 1024  # a media upload's bytes travel in one frame


class Channel:
    """One end of the socket pair. ``send`` may be called from any thread; ``recv`` from
    one reader thread only. Both raise EOFError once the other end is gone."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, *message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._send_lock:
                self.sock.sendall(_HEADER.pack(len(data)) + data)
        except OSError as exc:
            raise EOFError(f"the other end closed the channel: {exc}") from exc

    def recv(self) -> tuple:
        (size,) = _HEADER.unpack(self._read(_HEADER.size))
        if size > MAX_FRAME:
            raise EOFError(f"frame of {size} bytes is over the limit")
        return pickle.loads(self._read(size))

    def _read(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            try:
                chunk = self.sock.recv(min(left, 1 << 20))
            except OSError as exc:
                raise EOFError(str(exc)) from exc
            if not chunk:
                raise EOFError("the other end closed the channel")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def error_message(call_id: int, exc: BaseException) -> tuple:
    """An exception raised in the host, as an ("error", ...) message: TransportError and
    ValueError keep their meaning across the process boundary; anything else is a bug in
    the transport, reported as a retryable error with its type."""
    if isinstance(exc, TransportError):
        return ("error", call_id, "transport", str(exc), exc.code, exc.permanent)
    if isinstance(exc, ValueError):
        return ("error", call_id, "value", str(exc), "invalid_input", True)
    return ("error", call_id, "other", f"{type(exc).__name__}: {exc}", "transport_error", False)


def rebuild_error(kind: str, text: str, code: str, permanent: bool) -> Exception:
    if kind == "value":
        return ValueError(text)
    return TransportError(text, code=code, permanent=permanent)
