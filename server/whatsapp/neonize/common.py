"""Small helpers every part of the neonize transport uses: times, bounded calls,
enum names, handler guards."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _when(value: int | float | None) -> datetime:
    """A datetime for a neonize timestamp. Message timestamps are Unix milliseconds,
    receipts and send responses Unix seconds (notes §3); anything past 1e11 is read as
    milliseconds (1e11 seconds is the year 5138)."""
    if not value:
        return _now()
    seconds = value / 1000 if value > 1e11 else value
    return datetime.fromtimestamp(seconds, UTC)


def _bounded(call: Callable[[], Any], timeout: float, name: str) -> threading.Thread:
    """Run ``call`` on a helper thread and wait at most ``timeout`` for it; a call that
    is still blocked after that is left to finish (or not) on its own."""

    def run() -> None:
        try:
            call()
        except Exception:
            log.exception("%s failed", name)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(max(timeout, 0.05))
    return thread


def _enum_name(enum_type: Any, value: int, default: str = "UNKNOWN") -> str:
    """The name of a protobuf enum value; a value this neonize does not know is shown
    as its number rather than failing the handler."""
    try:
        return enum_type.Name(value) if value else default
    except ValueError:
        return str(value)


class _logged:
    """Context manager for event handlers: an exception is logged, never raised into
    neonize's ctypes callback (where it would be printed to stderr and lost)."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None and isinstance(exc, Exception):
            log.error("neonize %s handler failed", self.what, exc_info=(kind, exc, tb))
            return True
        return False
