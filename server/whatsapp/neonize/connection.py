"""The connection: start, the connect loop, stop, logout, and the lifecycle events."""

from __future__ import annotations

import ctypes
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
from server.whatsapp.neonize.errors import (
    _STORE_ERRORS,
    _TRANSIENT_ERRORS,
    _brief,
    _error_text,
    _transport_error,
)
from server.whatsapp.neonize.jids import _device_jid, _jid_str
from server.whatsapp.neonize.loader import _nz, route_go_stdout
from server.whatsapp.neonize.store import (
    DEVICE_FILE,
    SQLITE_STORE,
    StoreUnavailable,
    _detach_finalizer,
    sqlite_store_name,
    stored_device,
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
            self._check_store_url()
            self.store_dir.mkdir(parents=True, exist_ok=True)
            self._runner = threading.Thread(
                target=self._run, daemon=True, name=f"kabar-neonize-{self.session_id}"
            )
        if self.settings.route_go_stdout:
            route_go_stdout()
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
        self._cancel_idle_timer()
        if client is not None:
            wait = self.settings.stop_timeout
            if self._qr_count and not self._had_connection:
                wait = min(wait, 1.0)  # in Go's QR loop, Stop cannot end it (notes §6)
            deadline = time.monotonic() + wait
            stopper: threading.Thread | None = None
            while True:
                if stopper is None or not stopper.is_alive():  # never two Stops at once
                    stopper = _bounded(
                        client.stop,
                        deadline - time.monotonic(),
                        f"kabar-neonize-stop-{self.session_id}",
                    )
                    _detach_finalizer(client)
                if runner is None:
                    break
                runner.join(min(0.25, max(deadline - time.monotonic(), 0)))
                if not runner.is_alive() or time.monotonic() >= deadline:
                    break
            if runner is not None and runner.is_alive():
                # Go cannot be stopped (FetchMe after an unscanned QR, a hung Disconnect):
                # only a fresh process frees its thread, goroutine and store connection.
                self._recycle(f"neonize did not stop within {self.settings.stop_timeout:g} s")
        with self._lock:
            if self._client is client:
                # The next start() makes a new Go client under a new uuid: one that
                # reused this one's would be deleted from neonize's map by a Stop of
                # this one still under way (defect 3; seen with the real library).
                self._client = None
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
                    log.warning(
                        "session %s: %s failed after its timeout: %s", self.session_id, action, exc
                    )

        thread = threading.Thread(
            target=run, daemon=True, name=f"kabar-neonize-{action}-{self.session_id}"
        )
        thread.start()
        thread.join(self.settings.call_timeout)
        if thread.is_alive():
            box["late"] = True
            raise TransportError(
                f"{action}: WhatsApp did not answer within "
                f"{self.settings.call_timeout:g} s; try again.",
                code="timeout",
            )
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
        _bounded(
            lambda: answer.append(bool(client.is_connected)),
            1.0,
            f"kabar-neonize-is-connected-{self.session_id}",
        )
        return bool(answer and answer[0])

    # --- the connect loop -------------------------------------------------------------

    def _check_store_url(self) -> None:
        store = self.settings.store_url
        if store and not store.startswith("postgres"):
            raise TransportError(
                "store_url must be a postgres:// or postgresql:// URL.",
                code="invalid_store_url",
                permanent=True,
            )

    def _new_client(self) -> Any:
        """The neonize client for this session's device: the stored device, resumed by
        its full JID (``user:device@server``) once this session knows it and the store
        still holds it; else a fresh pairing, saying why (never a JID the store lacks:
        neonize would call ``whatsmeow.NewClient(nil)`` and abort, defect 1). A SQLite
        store never used by Kabar resumes its first (only) device."""
        store = self.settings.store_url
        sqlite_path = self.store_dir / SQLITE_STORE
        name = store or sqlite_store_name(sqlite_path)
        # Each start() has its own Go uuid: a late Go Stop of an earlier client of this
        # session can never delete this one from neonize's map (defect 3).
        self._generation += 1
        uuid = f"{self.session_id}#{self._generation}"
        common = {
            "uuid": uuid,
            "device_name": self.settings.device_name,
            "platform": self.settings.device_platform,
        }
        own = self._saved_jid()
        if own:
            found = stored_device(store, sqlite_path, own)  # StoreUnavailable: retried
            if found:
                if found != own:
                    self._save_jid(found)
                return self._client_factory(name, jid=_device_jid(found), **common)
            (self.store_dir / DEVICE_FILE).unlink(missing_ok=True)
            self._status(
                "connecting",
                f"device_missing: the store no longer holds this "
                f"session's device {own}; pair it again (scan the new QR code)",
            )
            return self._client_factory(name, new_device=True, **common)
        # A shared PostgreSQL store holds other sessions' devices: never "the first".
        return self._client_factory(name, new_device=bool(store), **common)

    def _recycle(self, why: str) -> None:
        """Ask the session host for a fresh process (see ``recycle_requested``)."""
        if not self.recycle_requested.is_set():
            log.warning("session %s: asking for a fresh process: %s", self.session_id, why)
            self.recycle_requested.set()

    def _run(self) -> None:
        """connect(), again and again with backoff, until stop(). neonize does not retry
        a first connect that fails (no network, DNS…): it raises at once (notes §6)."""
        attempt = 0
        while not self._stopping.is_set():
            if self._client is None:
                try:
                    client = self._new_client()
                except StoreUnavailable as exc:
                    attempt += 1
                    delay = self.settings.backoff(attempt)
                    self._status(
                        "reconnecting",
                        f"store_unavailable: the device store "
                        f"cannot be reached: {exc}; next try in {delay:g} s",
                    )
                    if self._stopping.wait(delay):
                        return
                    continue
                except TransportError as exc:
                    self._status("failed", str(exc))
                    return
                self._register_handlers(client)
                with self._lock:
                    self._client = client
            with self._lock:
                self._had_connection = False
                self._qr_count = 0
                self._first_qr.clear()
                self._pairing_phone = None
            error: BaseException | None = None
            self._connects += 1
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
            said = _brief(reason)  # what the status shows: the cause, not cut off
            limit = self.settings.max_connect_attempts
            if had_connection and error is not None:
                # Go's event loop ended on an error (e.g. a value it cannot encode, defect
                # 8) and may leave its client connected with nobody reading its events.
                self._status(
                    "reconnecting",
                    f"neonize's event loop ended: {said}; restarting the session's process",
                )
                self._recycle(f"the event loop ended: {reason}")
                return
            transient = _TRANSIENT_ERRORS.search(reason)
            if _STORE_ERRORS.search(reason) and not transient:
                self._status("failed", f"store_error: the device store cannot be used: {said}")
                return
            if limit and attempt >= limit:
                self._status(
                    "failed", f"could not connect to WhatsApp after {attempt} attempts: {said}"
                )
                return
            if self._connects >= self.settings.connects_per_process:
                # Each Go connect opens a store connection it never closes (defect 4):
                # bounded by handing over to a fresh process.
                self._status(
                    "reconnecting",
                    f"could not connect to WhatsApp: {said}; "
                    f"restarting the session's process after {self._connects} "
                    "attempts",
                )
                self._recycle(f"{self._connects} connect attempts in this process")
                return
            delay = self.settings.backoff(attempt)
            what = (
                "lost the connection to WhatsApp"
                if had_connection
                else f"could not connect to WhatsApp (attempt {attempt})"
            )
            self._status("reconnecting", f"{what}: {said}; next try in {delay:g} s")
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
            (ev.ConnectedEv, self._on_connected),
            (ev.DisconnectedEv, self._on_disconnected),
            (ev.LoggedOutEv, self._on_logged_out),
            (ev.TemporaryBanEv, self._on_temp_ban),
            (ev.ConnectFailureEv, self._on_connect_failure),
            (ev.PairStatusEv, self._on_pair_status),
            (ev.MessageEv, self._on_message),
            (ev.ReceiptEv, self._on_receipt),
            (ev.ChatPresenceEv, self._on_chat_presence),
            (ev.PresenceEv, self._on_presence),
            (ev.CallOfferEv, self._on_call),
            (ev.JoinedGroupEv, self._on_joined_group),
            (ev.HistorySyncEv, self._on_history_sync),
            (ev.ClientOutdatedEv, self._on_client_outdated),
            (ev.StreamReplacedEv, self._on_stream_replaced),
            (ev.UndecryptableMessageEv, self._on_undecryptable),
            (ev.GroupInfoEv, self._on_group_info),
        ):
            client.event(event_class)(handler)
        client.event.qr(self._on_qr)
        # What Go's QR loop reports besides codes ("timeout", "err-client-outdated", …);
        # neonize only print()s it. Read when connect() builds its callbacks.
        client._NewClient__onLoginStatus = self._on_login_status

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
            if identity and self._device:
                self._save_jid(self._device)  # the full device JID (defect 1)
            who = self._identity
            self._status(
                "connected",
                "connected to WhatsApp",
                jid=who and who.jid,
                phone=who and who.phone,
                push_name=who and who.push_name,
            )
            self._announce_available()

    def _on_client_outdated(self, client: Any, ev: Any) -> None:
        """whatsmeow dispatches only this (no ConnectFailure, no Disconnected) when
        WhatsApp refuses this client version, and does not reconnect (defect 6)."""
        with _logged("client_outdated"):
            with self._lock:
                self._connected = False
            self._status(
                "failed",
                "client_outdated: WhatsApp refuses this client version; "
                "update neonize (and Kabar), then start the session again",
            )

    def _on_stream_replaced(self, client: Any, ev: Any) -> None:
        """Another connection took this device over (the same session started twice,
        or a copy of its store elsewhere); whatsmeow does not reconnect."""
        with _logged("stream_replaced"):
            with self._lock:
                self._connected = False
            self._status(
                "stopped",
                "stream_replaced: another connection took over this "
                "device (is the session running twice, or its store copied?); "
                "start it again here once that one is gone",
            )

    def _on_undecryptable(self, client: Any, ev: Any) -> None:
        """A message this device could not decrypt; WhatsApp retries it by itself."""
        with _logged("undecryptable"):
            info = ev.Info
            log.warning(
                "session %s: could not decrypt message %s from %s in %s%s",
                self.session_id,
                info.ID,
                _jid_str(info.MessageSource.Sender),
                _jid_str(info.MessageSource.Chat),
                " (unavailable)" if ev.IsUnavailable else "",
            )

    def _on_login_status(self, uuid: Any, status: Any) -> None:
        """Go's QR loop ended without a code ("timeout", "err-client-outdated", …).
        After this, neonize waits in FetchMe for a login that cannot come, ignoring
        Stop (notes §6): only a fresh process ends it (defect 5)."""
        with _logged("login_status"):
            if isinstance(status, int):
                status = ctypes.string_at(status)
            text = (
                status.decode("utf-8", "replace")
                if isinstance(status, bytes)
                else str(status or "")
            )
            if text in ("success", ""):
                return
            if text == "timeout":
                self._qr_expired(self._qr_count)
            elif text == "err-client-outdated":
                self._status(
                    "failed",
                    "client_outdated: WhatsApp refuses this client "
                    "version; update neonize (and Kabar), then start the session "
                    "again",
                )
            else:
                self._status("failed", f"pairing failed: {text}")
            self._recycle(f"Go's QR loop ended ({text})")

    def _on_disconnected(self, client: Any, ev: Any) -> None:
        with _logged("disconnected"):
            if self._stopping.is_set():
                return
            with self._lock:
                self._connected = False
            self._status(
                "disconnected", "lost the connection to WhatsApp; reconnecting automatically"
            )

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
            self._status("logged_out", f"this device was logged out {where} ({why}); pair it again")

    def _on_temp_ban(self, client: Any, ev: Any) -> None:
        with _logged("temporary_ban"):
            with self._lock:
                self._connected = False
            code = _enum_name(_nz().N.TemporaryBan.TempBanReason, ev.Code)
            until = (_now() + timedelta(seconds=ev.Expire)).isoformat(timespec="seconds")
            self._status(
                "banned",
                f"temporarily banned by WhatsApp: {code} (code {ev.Code}); "
                f"expires in {ev.Expire} s, at {until}",
            )

    def _on_connect_failure(self, client: Any, ev: Any) -> None:
        """500 and 503 are retried by whatsmeow itself; the rest end the session."""
        with _logged("connect_failure"):
            N = _nz().N
            name = _enum_name(N.ConnectFailureReason, ev.Reason)
            reason = f"WhatsApp refused the connection: {name}" + (
                f" ({ev.Message})" if ev.Message else ""
            )
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
        self._device = f"{device.JID.User}:{device.JID.Device}@{device.JID.Server}"
        return Identity(
            jid=f"{device.JID.User}@{USER_SERVER}",
            phone=device.JID.User,
            push_name=device.PushName,
            lid=lid,
        )

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
