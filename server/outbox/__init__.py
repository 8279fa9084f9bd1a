"""The outbox: the one path every outgoing message takes (see service.py)."""

from server.outbox.service import cancel, get, reschedule, retry, send, validate

__all__ = ["cancel", "get", "reschedule", "retry", "send", "validate"]
