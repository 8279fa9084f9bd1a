"""Loading neonize: the only place in Kabar that imports it."""

from __future__ import annotations

import functools
import importlib
import io
import logging
import os
import subprocess
import sys
import threading
import types
import warnings
from types import SimpleNamespace
from typing import Any

log = logging.getLogger(__name__)

# Modules neonize imports when it loads, for code paths Kabar never takes: its own link
# previews (linkpreview, with bs4 and soupsieve; Kabar fetches previews through its SSRF
# guard), fetching URLs and downloading a missing Go library (requests, httpx with click
# and pygments, tqdm), and printing QR codes on a terminal (segno). Together they are
# about 12 MB of every session process (docs/benchmarks.md); they load on first use.
DEFERRED = ("linkpreview", "requests", "httpx", "tqdm", "segno")


class _Deferred(types.ModuleType):
    """Stands in for a module while neonize imports: ``from linkpreview import
    link_preview`` binds a function that imports the real module when called. Once
    neonize is loaded the stand-in leaves ``sys.modules``, and any other attribute asked
    of it (``requests.get``, ``segno.make_qr``) comes from the real module."""

    loading = True

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        name = self.__name__
        if not _Deferred.loading:
            return getattr(importlib.import_module(name), attr)

        def deferred(*args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(name), attr)(*args, **kwargs)

        deferred.__name__ = attr
        return deferred


def _closed_popen(command: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
    """os.popen for neonize's import: the same output, but the child is waited for and
    its pipe closed (neonize leaves both to the garbage collector, which warns later)."""
    result = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return io.StringIO(result.stdout)


class _DaemonThread(threading.Thread):
    def __init__(self, *args: Any, daemon: bool | None = None, **kwargs: Any):
        super().__init__(*args, daemon=True, **kwargs)


_routed = False


def route_go_stdout() -> None:
    """Send what Go prints to fd 1 ("Press Ctrl+C to exit", "Login event: …", "Pair
    Code: …", send errors) to the ``whatsmeow.stdout`` logger instead of the process's
    stdout; Python's own ``sys.stdout`` keeps the original stream. Once per process; for
    a session's own process (the runtime calls it there, never in the web app)."""
    global _routed
    if _routed:
        return
    _routed = True
    sys.stdout.flush()
    keep = os.dup(1)
    read, write = os.pipe()
    os.dup2(write, 1)
    os.close(write)
    sys.stdout = io.TextIOWrapper(os.fdopen(keep, "wb", buffering=0), line_buffering=True)
    go_log = logging.getLogger("whatsmeow.stdout")

    def pump() -> None:
        with os.fdopen(read, "rb") as lines:
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip()
                if text:
                    go_log.info("%s", text)

    threading.Thread(target=pump, name="kabar-go-stdout", daemon=True).start()


@functools.cache
def _nz() -> SimpleNamespace:
    """Import neonize once, on first use, and hand out the parts this module needs.

    neonize's import runs ``uname`` through ``os.popen`` without closing the pipe
    (a ResourceWarning, an error under pytest's ``-W error``) and calls
    ``logging.basicConfig`` on the root logger (notes §1); both are contained here so
    neither leaks into Kabar's warnings or logging setup.
    """
    # Before the Go library loads: never tag 1:1 messages as sent by a bot (goneonize
    # appends <bot biz_bot="1"/> unless NEONIZE_BOT_TAG is off; issue 12, defect 7).
    os.environ["NEONIZE_BOT_TAG"] = "off"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stand_ins = {name: _Deferred(name) for name in DEFERRED if name not in sys.modules}
    sys.modules.update(stand_ins)
    popen, os.popen = os.popen, _closed_popen
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            import neonize._binder as binder
            import neonize.builder as builder
            import neonize.events as events
            import neonize.exc as exc
            from neonize.client import NewClient
            from neonize.proto import Neonize_pb2
            from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import (
                DeviceProps,
            )
            from neonize.proto.waE2E import WAWebProtobufsE2E_pb2
            from neonize.utils import enum
    finally:
        os.popen = popen
        _Deferred.loading = False
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    import neonize.client

    # connect() runs Go ``Neonize`` on a non-daemon thread; when Go cannot be stopped
    # (FetchMe spinning after an unscanned QR, notes §6) that thread would keep the
    # process from exiting. A daemon thread lets the session's process end.
    neonize.client.Thread = _DaemonThread
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return SimpleNamespace(
        N=Neonize_pb2,
        E=WAWebProtobufsE2E_pb2,
        NewClient=NewClient,
        DeviceProps=DeviceProps,
        events=events,
        exc=exc,
        enum=enum,
        builder=builder,
        binder=binder,
    )
