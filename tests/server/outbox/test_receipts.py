"""A receipt only ever moves a sent message's status forward."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from server.outbox import receipts

AT = datetime(2024, 9, 2, 10, 0, tzinfo=UTC)


@dataclass
class Row:
    status: str
    delivered_at: datetime | None = None
    read_at: datetime | None = None


@pytest.mark.parametrize(
    ("current", "receipt", "after"),
    [
        # forward
        ("sent", "delivered", "delivered"),
        ("delivered", "read", "read"),
        ("sent", "read", "read"),  # the delivery receipt may come last, or never
        ("read", "played", "played"),
        ("sending", "sent", "sent"),
        # never backwards, never sideways
        ("read", "delivered", "read"),
        ("played", "read", "played"),
        ("delivered", "sent", "delivered"),
        ("read", "read", "read"),
        # failed: only before delivery
        ("sent", "failed", "failed"),
        ("sending", "failed", "failed"),
        ("delivered", "failed", "delivered"),
        ("read", "failed", "read"),
        ("failed", "delivered", "delivered"),  # it arrived after all
        # unknown receipts change nothing
        ("sent", "server-ack", "sent"),
        # deleted for everyone: a receipt arriving after the revoke changes nothing
        ("revoked", "read", "revoked"),
        ("revoked", "delivered", "revoked"),
        ("revoked", "failed", "revoked"),
    ],
)
def test_a_receipt_moves_a_status_only_forward(current, receipt, after):
    row = Row(current)
    moved = receipts.apply(row, receipt, AT)
    assert row.status == after
    assert moved == (after != current)


def test_every_out_of_order_sequence_ends_at_the_furthest_status():
    """However the receipts of one message arrive, it ends at the furthest one."""
    import itertools

    for order in itertools.permutations(["sent", "delivered", "read"]):
        row = Row("sending")
        for receipt in order:
            receipts.apply(row, receipt, AT)
        assert row.status == "read", order


def test_delivery_and_read_times_are_kept_from_the_first_receipt_that_says_so():
    row = Row("sent")
    receipts.apply(row, "read", AT)
    assert row.delivered_at == AT and row.read_at == AT  # read stands for delivered
    receipts.apply(row, "delivered", AT + timedelta(seconds=5))  # late: ignored
    receipts.apply(row, "played", AT + timedelta(seconds=9))
    assert row.status == "played" and row.delivered_at == AT and row.read_at == AT


def test_the_batch_update_leaves_what_apply_leaves():
    """The sink's UPDATE skips the statuses ``not_advanced_by`` names: the same rule."""
    for receipt in ("delivered", "read", "played", "failed"):
        left = receipts.not_advanced_by(receipt)
        assert "revoked" in left
        for status in (*receipts.ORDER, "failed", "revoked"):
            assert (status in left) == (not receipts.advances(status, receipt))
