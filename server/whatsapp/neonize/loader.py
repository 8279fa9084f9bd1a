"""Loading neonize: the only place in Kabar that imports it."""

from __future__ import annotations

import functools
import io
import logging
import subprocess
import warnings
from types import SimpleNamespace
from unittest import mock

log = logging.getLogger(__name__)

def _closed_popen(command: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
    """os.popen for neonize's import: the same output, but the child is waited for and
    its pipe closed (neonize leaves both to the garbage collector, which warns later)."""
    result = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return io.StringIO(result.stdout)


@functools.cache
def _nz() -> SimpleNamespace:
    """Import neonize once, on first use, and hand out the parts this module needs.

    neonize's import runs ``uname`` through ``os.popen`` without closing the pipe
    (a ResourceWarning, an error under pytest's ``-W error``) and calls
    ``logging.basicConfig`` on the root logger (notes §1); both are contained here so
    neither leaks into Kabar's warnings or logging setup.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with warnings.catch_warnings(), mock.patch("os.popen", _closed_popen):
        warnings.simplefilter("ignore", ResourceWarning)
        import neonize._binder as binder
        import neonize.builder as builder
        import neonize.events as events
        import neonize.exc as exc
        from neonize.client import NewClient
        from neonize.proto import Neonize_pb2
        from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
        from neonize.proto.waE2E import WAWebProtobufsE2E_pb2
        from neonize.utils import enum
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return SimpleNamespace(N=Neonize_pb2, E=WAWebProtobufsE2E_pb2, NewClient=NewClient,
                           DeviceProps=DeviceProps, events=events, exc=exc, enum=enum,
                           builder=builder, binder=binder)
