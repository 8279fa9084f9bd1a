"""Pairing: QR codes (Go's QR loop) and pairing codes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from server.events import (
    SessionStatus,
)
from server.whatsapp.transport import TransportError
from tests.server.whatsapp.neonize.conftest import (
    wait_for,
)


def test_qr_codes_first_60s_then_20s(make):
    transport, client, recorder = make(paired=False)
    client.qr(b"2@first,abc")
    client.qr(b"2@second,def")
    wait_for(lambda: len([s for s in recorder.statuses() if s == "qr"]) == 2, what="two QRs")
    qrs = [e for e in recorder.of(SessionStatus) if e.status == "qr"]
    assert [q.qr for q in qrs] == ["2@first,abc", "2@second,def"]
    now = datetime.now(UTC)
    assert 55 < (qrs[0].qr_expires_at - now).total_seconds() <= 60
    assert 15 < (qrs[1].qr_expires_at - now).total_seconds() <= 20


def test_unscanned_qr_stops_the_session(make):
    transport, client, recorder = make(paired=False, first_qr_seconds=0.05,
                                       qr_grace_seconds=0.05)
    client.qr(b"2@only")
    wait_for(lambda: "stopped" in recorder.statuses(), what="qr expiry")
    assert recorder.last(SessionStatus).reason.startswith("qr_expired")


def test_pair_status_success_says_connecting(make):
    transport, client, recorder = make(paired=False)
    client.qr(b"2@code")
    client.scan()
    wait_for(lambda: "connected" in recorder.statuses(), what="connected")
    paired = [e for e in recorder.of(SessionStatus) if e.status == "connecting"][-1]
    assert "paired as 15559990000@s.whatsapp.net" in paired.reason


def test_pair_code_waits_for_the_first_qr_then_fails_clearly(make):
    transport, client, recorder = make(paired=False, pair_code_wait=0.2)
    with pytest.raises(TransportError) as caught:
        transport.pair_code("+1 555 999 0000")
    assert caught.value.code == "pairing_not_ready" and "QR" in str(caught.value)
    assert not client.called("PairPhone")


def test_pair_code_after_the_first_qr(make):
    transport, client, recorder = make(paired=False, pair_code_wait=2)
    threading.Timer(0.05, client.qr, args=(b"2@late",)).start()
    assert transport.pair_code("+1 555 999 0000") == "ABCD-EFGH"
    assert client.called("PairPhone") == [(("15559990000", True), {})]
    assert recorder.last(SessionStatus).pair_code == "ABCD-EFGH"
    client.qr(b"2@next")  # the code stays on screen
    wait_for(lambda: client.called("PairPhone"), what="PairPhone")
    assert recorder.last(SessionStatus).status == "pairing_code"


def test_qr_loop_ending_unscanned_stops_and_asks_for_a_fresh_process(make):
    """Go reports "timeout" through its login-status callback, then spins in FetchMe
    ignoring Stop: the session says so at once and asks for a fresh process."""
    transport, client, recorder = make(paired=False)
    client.qr(b"2@code")
    client.qr_channel_closed(b"timeout")
    wait_for(transport.recycle_requested.is_set, what="recycle")
    last = recorder.last(SessionStatus)
    assert last.status == "stopped" and last.reason.startswith("qr_expired")
