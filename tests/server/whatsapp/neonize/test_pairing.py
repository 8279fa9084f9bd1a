"""Pairing: QR codes (Go's QR loop) and pairing codes."""

from __future__ import annotations

import threading
import time
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
    transport, client, recorder = make(paired=False, first_qr_seconds=0.05, qr_grace_seconds=0.05)
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
    code, expires_at = transport.pair_code("+1 555 999 0000")
    assert code == "ABCD-EFGH"
    assert client.called("PairPhone") == [(("15559990000", True), {})]
    shown = recorder.last(SessionStatus)
    assert shown.pair_code == "ABCD-EFGH" and shown.qr_expires_at == expires_at
    assert 170 < (expires_at - datetime.now(UTC)).total_seconds() <= 180
    client.qr(b"2@next")  # the code stays on screen
    wait_for(lambda: client.called("PairPhone"), what="PairPhone")
    assert recorder.last(SessionStatus).status == "pairing_code"


def test_a_pair_code_keeps_its_own_time_while_qr_codes_rotate(make):
    """QR rotations (20 s each) must not cut the code's time short: an answer typed
    after the next QR rotation still pairs; a code nobody enters ends the session."""
    transport, client, recorder = make(
        paired=False, pair_code_wait=2, qr_seconds=0.05, qr_grace_seconds=0.05, pair_code_seconds=2
    )
    client.qr(b"2@first")
    transport.pair_code("+1 555 999 0000")
    for rotation in range(3):  # each would have expired a QR code after 0.1 s
        time.sleep(0.1)
        client.qr(f"2@rotation{rotation}".encode())
    assert "stopped" not in recorder.statuses()
    wait_for(lambda: "stopped" in recorder.statuses(), what="the code to expire")
    assert recorder.last(SessionStatus).reason.startswith(
        "qr_expired: nobody used the pairing code"
    )


def test_qr_loop_ending_unscanned_stops_and_asks_for_a_fresh_process(make):
    """Go reports "timeout" through its login-status callback, then spins in FetchMe
    ignoring Stop: the session says so at once and asks for a fresh process."""
    transport, client, recorder = make(paired=False)
    client.qr(b"2@code")
    client.qr_channel_closed(b"timeout")
    wait_for(transport.recycle_requested.is_set, what="recycle")
    last = recorder.last(SessionStatus)
    assert last.status == "stopped" and last.reason.startswith("qr_expired")
