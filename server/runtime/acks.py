"""Waiting for a transport's events to be stored: one at a time, or a batch at once.

An event that must be stored before the transport's call returns (an inbound message;
the sandbox's record of a delivery) holds its caller until the sink has committed it.
A sender sending a batch would then wait for one commit per message. Inside
``deferred()`` the waits of events emitted on this thread are collected instead, and the
sender waits for them all once (``Deferred.wait``), before it records the batch as sent:
still nothing is recorded sent before its delivery is stored, and the sink stores the
batch's events in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_local = threading.local()


class NotStored(RuntimeError):
    """The sink stopped before it stored an event this batch waits for."""


class Deferred:
    def __init__(self) -> None:
        self._waits: list[tuple[threading.Event, Callable[[], bool]]] = []

    def add(self, stored: threading.Event, alive: Callable[[], bool]) -> None:
        self._waits.append((stored, alive))

    def wait(self) -> None:
        """Return once every deferred event is stored; raise NotStored if the sink that
        should store one has stopped."""
        for stored, alive in self._waits:
            while not stored.wait(1.0):
                if not alive():
                    raise NotStored("the runtime is stopping; the batch is not recorded")
        self._waits.clear()


@contextmanager
def deferred() -> Iterator[Deferred]:
    """Collect, on this thread, the waits for stored events until ``wait()``."""
    previous = getattr(_local, "deferred", None)
    _local.deferred = batch = Deferred()
    try:
        yield batch
    finally:
        _local.deferred = previous


def defer(stored: threading.Event, alive: Callable[[], bool]) -> bool:
    """Called where an event is emitted: True if this thread is inside ``deferred()``
    (the wait is collected there), False if the caller must wait for ``stored`` itself."""
    batch = getattr(_local, "deferred", None)
    if batch is None:
        return False
    batch.add(stored, alive)
    return True
