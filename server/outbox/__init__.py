"""The outbox: the one path every outgoing message takes (see queue.py)."""

from server.outbox.queue import (
    act,
    cancel,
    get,
    history_message,
    listing,
    reschedule,
    retry,
    send,
    validate,
)

__all__ = [
    "act",
    "cancel",
    "get",
    "history_message",
    "listing",
    "reschedule",
    "retry",
    "send",
    "validate",
]
