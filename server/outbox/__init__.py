"""The outbox: the one path every outgoing message takes (see service.py)."""

from server.outbox.service import (
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

__all__ = ["act", "cancel", "get", "history_message", "listing", "reschedule", "retry", "send",
           "validate"]
