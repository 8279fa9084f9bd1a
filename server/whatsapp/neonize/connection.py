"""The connection: start, the connect loop, stop, logout, and the lifecycle events."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from server.events import (
    SessionStatus,
)
from server.whatsapp.jids import USER_SERVER
from server.whatsapp.neonize.common import _bounded, _enum_name, _logged, _now
from server.whatsapp.neonize.errors import _STORE_ERRORS, _error_text, _transport_error
from server.whatsapp.neonize.jids import _jid, _jid_str
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.neonize.store import (
    DEVICE_FILE,
    SQLITE_STORE,
    _detach_finalizer,
    sqlite_store_name,
)
from server.whatsapp.transport import (
    Identity,
    NotConnected,
    TransportError,
)

log = logging.getLogger(__name__)

ENDED = {"logged_out", "banned", "failed", "stopped"}  # statuses after which we stop retrying


class Connection:
    """The transport's connection."""

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Create the client and run ``connect()`` on a thread of its own; return at once.
        Progress arrives as SessionStatus events."""
        with self._lock:
            if self._runner is not None and self._runner.is_alive():
                return
            self._stopping.clear()
            self._client = self._new_client()
            self._register_handlers(self._client)
            self._runner = threading.Thread(target=self._run, daemon=True,
                                            name=f"kabar-neonize-{self.session_id}")
        self._status("connecting", "starting")
        self._runner.start()

    def stop(self) -> None:
        """Stop quietly (the runtime reports the stop it asked for), within
        ``stop_timeout`` even if neonize does not let go.

        Go ``Stop`` can block while whatsmeow dials (notes §6), so it runs on a helper
        thread. It is repeated until ``connect()`` returns: a ``Stop`` that lands before
        neonize has registered the Go client is a no-op.
        """
        with self._go_lock:  # no get_me/LID look-up is running, none will start
            self._stopping.set()
            with self._lock:
                self._connected = False
                client, runner = self._client, self._runner
        self._cancel_qr_timer()
        self._first_qr.set()  # a pair_code() waiting for a QR gives up now
        if client is not None:
            deadline = time.monotonic() + self.settings.stop_timeout
            stopper: threading.Thread | None = None
            while True:
                if stopper is None or not stopper.is_alive():  # never two Stops at once
                    stopper = _bounded(client.stop, deadline - time.monotonic(),
                                       f"kabar-neonize-stop-{self.session_id}")
                    _detach_finalizer(client)
                if runner is None:
                    break
                runner.join(min(0.25, max(deadline - time.monotonic(), 0)))
                if not runner.is_alive() or time.monotonic() >= deadline:
                    break
            if runner is not None and runner.is_alive():
                log.warning("session %s: neonize did not stop within %ss; leaving its "
                            "thread behind", self.session_id, self.settings.stop_timeout)
        self._ids.close()

    def logout(self) -> None:
        """Unlink this device. whatsmeow's Logout is a round trip to WhatsApp; it may
        finish after ``call_timeout`` (then logged_out is reported when it does)."""
        client = self._require_connected()

        def unlink() -> None:
            client.logout()
            with self._lock:
                self._connected = False
                self._identity = None
            (self.store_dir / DEVICE_FILE).unlink(missing_ok=True)
            self._status("logged_out", "logged out by request")

        self._within(unlink, "logout")

    def _within(self, call: Callable[[], Any], action: str) -> Any:
        """``call()`` on a helper thread, answered within ``call_timeout`` (control-thread
        calls must not hold the runtime up); errors mapped to TransportError."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = call()
            except Exception as exc:
                box["error"] = exc
                if "late" in box:
                    log.warning("session %s: %s failed after its timeout: %s",
                                self.session_id, action, exc)

        thread = threading.Thread(target=run, daemon=True,
                                  name=f"kabar-neonize-{action}-{self.session_id}")
        thread.start()
        thread.join(self.settings.call_timeout)
        if thread.is_alive():
            box["late"] = True
            raise TransportError(f"{action}: WhatsApp did not answer within "
                                 f"{self.settings.call_timeout:g} s; try again.",
                                 code="timeout")
        if "error" in box:
            raise _transport_error(box["error"], action) from box["error"]
        return box.get("value")

    def me(self) -> Identity | None:
        return self._identity if self._connected else None

    def is_connected(self) -> bool:
        """Our own state, confirmed by whatsmeow. Only the runtime's control thread calls
        this (its watchdog). whatsmeow's IsConnected blocks while a dial holds its socket
        lock (notes §6): an answer that does not come within a second means "no"."""
        client = self._client
        if not self._connected or client is None:
            return False
        answer: list[bool] = []
        _bounded(lambda: answer.append(bool(client.is_connected)), 1.0,
                 f"kabar-neonize-is-connected-{self.session_id}")
        return bool(answer and answer[0])

    # --- the connect loop -------------------------------------------------------------

    def _new_client(self) -> Any:
        store = self.settings.store_url
        if store and not store.startswith("postgres"):
            raise TransportError("store_url must be a postgres:// or postgresql:// URL.",
                                 code="invalid_store_url", permanent=True)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not store:
            # One SQLite file per session: its first (only) device is this session's.
            return self._client_factory(sqlite_store_name(self.store_dir / SQLITE_STORE),
                                        uuid=self.session_id,
                                        device_name=self.settings.device_name)
        # A shared PostgreSQL store holds every session's device: resume ours by JID, or
        # pair a new one, never "the first device" (which may be another session's).
        own = self._saved_jid()
        return self._client_factory(store, uuid=self.session_id,
                                    jid=_jid(own) if own else None, new_device=not own,
                                    device_name=self.settings.device_name)

    def _run(self) -> None:
        """connect(), again and again with backoff, until stop(). neonize does not retry
        a first connect that fails (no network, DNS…): it raises at once (notes §6)."""
        attempt = 0
        while not self._stopping.is_set():
            with self._lock:
                self._had_connection = False
                self._qr_count = 0
                self._first_qr.clear()
                self._pairing_phone = None
            error: BaseException | None = None
            try:
                self._client.connect()
            except Exception as exc:
                error = exc
            if self._stopping.is_set():
                return
            with self._lock:
                self._connected = False
                had_connection = self._had_connection
                attempt = 1 if had_connection else attempt + 1
            self._cancel_qr_timer()
            if self._last_status in ENDED:
                return  # banned, logged out, failed, QR expired: the runtime stops us
            reason = _error_text(error) if error else "the connection to WhatsApp ended"
            limit = self.settings.max_connect_attempts
            if _STORE_ERRORS.search(reason):
                self._status("failed", f"store_error: the device store cannot be used: "
                             f"{reason}")
                return
            if limit and attempt >= limit:
                self._status("failed", f"could not connect to WhatsApp after {attempt} "
                             f"attempts: {reason}")
                return
            delay = self.settings.backoff(attempt)
            what = "lost the connection to WhatsApp" if had_connection else \
                f"could not connect to WhatsApp (attempt {attempt})"
            self._status("reconnecting", f"{what}: {reason}; next try in {delay:g} s")
            if self._stopping.wait(delay):
                return

    # --- event handlers (neonize's connect thread; convert and emit only) -------------

    def _register_handlers(self, client: Any) -> None:
        """Every handler before connect(): neonize copies the subscription list when
        connect() starts (notes §3). StreamReplaced, KeepAliveRestored and ClientOutdated
        are deliberately absent (hazard). Bound methods are kept as weak references by
        neonize, which is fine: the runtime holds this transport while it runs."""
        ev = _nz().events
        for event_class, handler in (
                (ev.ConnectedEv, self._on_connected), (ev.DisconnectedEv, self._on_disconnected),
                (ev.LoggedOutEv, self._on_logged_out), (ev.TemporaryBanEv, self._on_temp_ban),
                (ev.ConnectFailureEv, self._on_connect_failure),
                (ev.PairStatusEv, self._on_pair_status), (ev.MessageEv, self._on_message),
                (ev.ReceiptEv, self._on_receipt), (ev.ChatPresenceEv, self._on_chat_presence),
                (ev.PresenceEv, self._on_presence), (ev.CallOfferEv, self._on_call),
                (ev.JoinedGroupEv, self._on_joined_group),
                (ev.GroupInfoEv, self._on_group_info)):
            client.event(event_class)(handler)
        client.event.qr(self._on_qr)

    def _on_connected(self, client: Any, ev: Any) -> None:
        with _logged("connected"):
            with self._lock:
                self._connected = self._had_connection = True
                self._sent_available = False
                self._pairing_phone = None
            self._cancel_qr_timer()
            identity = self._read_identity(client)
            with self._lock:
                self._identity = identity or self._identity
            if identity:
                self._save_jid(identity.jid)
            who = self._identity
            self._status("connected", "connected to WhatsApp", jid=who and who.jid,
                         phone=who and who.phone, push_name=who and who.push_name)

    def _on_disconnected(self, client: Any, ev: Any) -> None:
        with _logged("disconnected"):
            if self._stopping.is_set():
                return
            with self._lock:
                self._connected = False
            self._status("disconnected", "lost the connection to WhatsApp; reconnecting "
                         "automatically")

    def _on_logged_out(self, client: Any, ev: Any) -> None:
        with _logged("logged_out"):
            with self._lock:
                self._connected = False
                self._identity = None
            (self.store_dir / DEVICE_FILE).unlink(missing_ok=True)
            if self._last_status == "logged_out":
                return  # logout() already said so
            why = _enum_name(_nz().N.ConnectFailureReason, ev.Reason, "LOGGED_OUT")
            where = "while Kabar was offline" if ev.OnConnect else "from the phone"
            self._status("logged_out", f"this device was logged out {where} ({why}); pair it "
                         "again")

    def _on_temp_ban(self, client: Any, ev: Any) -> None:
        with _logged("temporary_ban"):
            with self._lock:
                self._connected = False
            code = _enum_name(_nz().N.TemporaryBan.TempBanReason, ev.Code)
            until = (_now() + timedelta(seconds=ev.Expire)).isoformat(timespec="seconds")
            self._status("banned", f"temporarily banned by WhatsApp: {code} (code {ev.Code}); "
                         f"expires in {ev.Expire} s, at {until}")

    def _on_connect_failure(self, client: Any, ev: Any) -> None:
        """500 and 503 are retried by whatsmeow itself; the rest end the session."""
        with _logged("connect_failure"):
            N = _nz().N
            name = _enum_name(N.ConnectFailureReason, ev.Reason)
            reason = f"WhatsApp refused the connection: {name}" + \
                (f" ({ev.Message})" if ev.Message else "")
            with self._lock:
                self._connected = False
            if ev.Reason in (N.INTERNAL_SERVER_ERROR, N.SERVICE_UNAVAILABLE):
                self._status("reconnecting", reason + "; retrying")
            else:
                self._status("failed", reason)

    # --- state helpers ----------------------------------------------------------------

    def _status(self, status: str, reason: str = "", **fields: Any) -> None:
        self._last_status = status
        self.emit(SessionStatus(status=status, reason=reason, **fields))

    def _require_connected(self) -> Any:
        """The client, if connected; NotConnected otherwise, without touching it."""
        with self._lock:
            client = self._client
            if not self._connected or client is None or self._stopping.is_set():
                raise NotConnected()
            return client

    def _read_identity(self, client: Any) -> Identity | None:
        """Who we are: from the Device neonize received before its event loop started
        (``client.me``, no Go call), else ``get_me()`` — safe here, on a connected client,
        under ``_go_lock`` (notes §6)."""
        device = getattr(client, "me", None)
        if device is None or not device.JID.User:
            with self._go_lock:
                if not self._connected or self._stopping.is_set():
                    return None
                try:
                    device = client.get_me()
                except Exception:
                    log.exception("session %s: get_me failed", self.session_id)
                    return None
        if device is None or not device.JID.User:
            return None
        lid = _jid_str(device.LID) if device.HasField("LID") and device.LID.User else None
        return Identity(jid=f"{device.JID.User}@{USER_SERVER}", phone=device.JID.User,
                        push_name=device.PushName, lid=lid)

    def _saved_jid(self) -> str | None:
        try:
            return json.loads((self.store_dir / DEVICE_FILE).read_text())["jid"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_jid(self, jid: str) -> None:
        try:
            (self.store_dir / DEVICE_FILE).write_text(json.dumps({"jid": jid}))
        except OSError:
            log.exception("session %s: could not save the device JID", self.session_id)

