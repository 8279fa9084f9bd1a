"""Pairing: QR codes and pairing codes."""

from __future__ import annotations

import logging
import re
import threading
from datetime import timedelta
from typing import Any

from server.whatsapp.neonize.common import _logged, _now
from server.whatsapp.neonize.jids import _jid_str
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.transport import (
    PairingCode,
    TransportError,
)

log = logging.getLogger(__name__)


class Pairing:
    """The transport's pairing."""

    def pair_code(self, phone: str) -> PairingCode:
        """Link by phone number: whatsmeow's PairPhone needs its login socket up, which
        the first QR code proves (notes §5), so wait for that first (bounded). The code
        is shown with its expiry; QR rotations meanwhile neither replace it nor cut its
        time short, so an answer typed late (but in time) still pairs."""
        with self._lock:
            client, running = self._client, self._runner is not None and self._runner.is_alive()
            if self._connected:
                raise TransportError(
                    "The session is already paired.", code="already_paired", permanent=True
                )
        if client is None or not running or self._stopping.is_set():
            raise TransportError(
                "The session is not running; start it first.", code="session_not_running"
            )
        wait = self.settings.pair_code_wait
        got_qr = self._first_qr.wait(wait)
        if self._stopping.is_set():
            raise TransportError(
                "The session stopped before WhatsApp offered a login.", code="session_not_running"
            )
        if not got_qr:
            raise TransportError(
                f"WhatsApp offered no login within {wait:g} s (no QR code yet), so there is "
                "no pairing code to ask for; check that the server reaches WhatsApp and try "
                "again.",
                code="pairing_not_ready",
            )
        digits = re.sub(r"\D", "", phone)
        code = self._within(
            lambda: client.PairPhone(digits, show_push_notification=True), "pair_code"
        )
        seconds = self.settings.pair_code_seconds
        expires = _now() + timedelta(seconds=seconds)
        with self._lock:
            self._pairing_phone = digits
            self._arm_qr_timer(seconds + self.settings.qr_grace_seconds)
        self._status(
            "pairing_code",
            f"enter the code on {digits}: WhatsApp > Linked devices > Link with phone number",
            pair_code=code,
            qr_expires_at=expires,
        )
        return PairingCode(code, expires)

    def _on_qr(self, client: Any, data: bytes) -> None:
        """One call per QR rotation, with the code as bytes (notes §3)."""
        with _logged("qr"):
            with self._lock:
                if self._stopping.is_set() or self._connected:
                    return
                self._qr_count += 1
                seconds = (
                    self.settings.first_qr_seconds
                    if self._qr_count == 1
                    else self.settings.qr_seconds
                )
                count, pairing = self._qr_count, self._pairing_phone
                if not pairing:  # a pair code on screen keeps its own expiry
                    self._arm_qr_timer(seconds + self.settings.qr_grace_seconds)
            self._first_qr.set()
            if pairing:  # a pair code is on screen; a new QR must not replace it
                return
            code = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            self._status(
                "qr",
                f"scan with WhatsApp > Linked devices (code {count})",
                qr=code,
                qr_expires_at=_now() + timedelta(seconds=seconds),
            )

    def _on_pair_status(self, client: Any, ev: Any) -> None:
        with _logged("pair_status"):
            if ev.Status == _nz().N.PairStatus.SUCCESS:
                self._status(
                    "connecting", f"paired as {_jid_str(ev.ID)} ({ev.Platform}); logging in"
                )
            else:
                self._status("failed", f"pairing failed: {ev.Error or 'unknown error'}")

    def _arm_qr_timer(self, seconds: float) -> None:
        """Nobody scanned: whatsmeow's QR channel ends after its last code and neonize
        then waits for a login forever (notes §6), so Kabar gives up itself."""
        self._cancel_qr_timer()
        timer = threading.Timer(seconds, self._qr_expired, args=(self._qr_count,))
        timer.daemon = True
        timer.name = f"kabar-neonize-qr-{self.session_id}"
        self._qr_timer = timer
        timer.start()

    def _cancel_qr_timer(self) -> None:
        with self._lock:
            timer, self._qr_timer = self._qr_timer, None
        if timer is not None:
            timer.cancel()

    def _qr_expired(self, count: int) -> None:
        with self._lock:
            if self._connected or self._stopping.is_set():
                return
            if count != self._qr_count and not self._pairing_phone:
                return  # a newer QR code armed its own timer
            what = "pairing code" if self._pairing_phone else "QR code"
        self._status(
            "stopped", f"qr_expired: nobody used the {what}; start the session to get a new one"
        )
        self._recycle(f"the {what} expired")  # Go now spins in FetchMe (notes §6)
