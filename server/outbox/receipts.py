"""What a receipt does to a sent message's status: it only ever moves it forward.

WhatsApp's receipts arrive in any order (a "delivered" after the "read" it preceded, one
receipt for several messages, a second device's copy), so a message's status is the
furthest it has got: queued < sending < sent < delivered < read < played. A "failed"
receipt counts only for a message not yet delivered; one that was delivered stays so.
A message deleted for everyone stays "revoked": a receipt arriving after it changes nothing.
The same rule for the outbox row and its history row (``messages``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

ORDER: dict[str, int] = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "played": 5,
}
DELIVERED = ("delivered", "read", "played")  # a receipt that says it was delivered
READ = ("read", "played")
FINAL = ("revoked",)


def advances(current: str, receipt: str) -> bool:
    """Whether a ``receipt`` status changes a message that is at ``current``."""
    if current in FINAL:
        return False
    here = ORDER.get(current, -1)
    if receipt == "failed":
        return current != "failed" and here < ORDER["delivered"]
    rank = ORDER.get(receipt)
    return rank is not None and rank > here


def not_advanced_by(receipt: str) -> tuple[str, ...]:
    """The statuses a ``receipt`` leaves alone: ``advances`` as a set, for an UPDATE's
    condition (any status not named here, an unknown one included, moves)."""
    return tuple(status for status in (*ORDER, "failed", *FINAL) if not advances(status, receipt))


class Receiving(Protocol):
    status: str


def apply(row: Receiving, receipt: str, at: datetime) -> bool:
    """Apply one receipt to ``row`` (an ``OutboxMessage`` or a history ``Message``):
    True if it moved. An outbox row also keeps when it was delivered and read (a read
    receipt that came first stands for the delivery too)."""
    if not advances(row.status, receipt):
        return False
    row.status = receipt
    if hasattr(row, "delivered_at") and receipt in DELIVERED:
        if row.delivered_at is None:
            row.delivered_at = at
    if hasattr(row, "read_at") and receipt in READ and row.read_at is None:
        row.read_at = at
    return True
