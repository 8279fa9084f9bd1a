"""The instance folder: one served Kabar at a time.

``claim()`` is what `kabar run` and `kabar demo` do before they change anything: it
takes an exclusive lock on ``kabar.lock`` in the instance folder (released by the kernel
when the process ends, so a crash leaves no stale lock) and checks that the port is
free. A second `kabar run` on the same instance, or on a busy port, is refused with who
holds it and how to choose another, instead of clearing the first one's metrics and
failing later in gunicorn.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO

from server.errors import KabarError


class InstanceBusy(KabarError):
    status = 409
    code = "instance_busy"


LOCK_NAME = "kabar.lock"
_held: list[IO[str]] = []  # the lock lives as long as the process


def claim(instance: Path, *, host: str, port: int) -> None:
    """Lock ``instance`` for this process and check that ``host:port`` is free, or raise
    InstanceBusy saying what holds it and what to do. Changes nothing when refused."""
    path = instance / LOCK_NAME
    handle = open(path, "a+")  # kept open: the lock is the open file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            raise
        handle.seek(0)
        holder = _read(handle.read())
        handle.close()
        where = f" on {holder['url']}" if holder.get("url") else ""
        raise InstanceBusy(
            f"Kabar is already running for the instance {instance} (PID "
            f"{holder.get('pid', '?')}{where}). Stop it first (Ctrl+C in its terminal, or "
            f"kill {holder.get('pid', 'PID')}), or run a second Kabar on its own instance "
            f"and port: KABAR_INSTANCE_PATH=/another/folder kabar run --port "
            f"{port + 1}."
        ) from None
    try:
        _check_port(host, port)
    except InstanceBusy:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "url": f"http://{host}:{port}"}))
    handle.flush()
    _held.append(handle)


def _read(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InstanceBusy(
                    f"Port {port} on {host} is in use by another program (another Kabar on "
                    f"another instance?). Choose another port with --port or KABAR_PORT, "
                    f"e.g. --port {port + 1}."
                ) from None
            raise InstanceBusy(
                f"Cannot listen on {host}:{port}: {exc.strerror}. Check "
                "--host/KABAR_HOST and --port/KABAR_PORT."
            ) from None
