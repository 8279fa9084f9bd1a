"""The neonize transport against the REAL neonize 0.5.2 library (its Go core, whatsmeow),
offline: every test here runs inside a loopback-only network namespace (``offline.py``),
where whatsmeow's dial fails at once, with no DNS query leaving the machine. That is how
issue 12's aborts, races and leaks were reproduced; these tests keep them fixed.

Sessions run as in production: each in its own process (``ProcessHost``), started again
when the transport asks for a fresh process (``RECYCLE_EXIT``), as the runtime does. Any
other end of a process (an abort, a segfault, a Go fatal error) fails the test.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from server.events import SessionStatus
from server.runtime.hosts import ProcessHost
from server.runtime.session_host import RECYCLE_EXIT
from server.whatsapp.neonize import NeonizeTransport, new_neonize_client
from server.whatsapp.neonize.store import DEVICE_FILE, SQLITE_STORE
from server.whatsapp.transport import NotConnected
from tests.server.whatsapp.neonize.offline import assert_offline, insert_device
from tests.server.whatsapp.neonize.real_transports import recorded_clients

pytestmark = pytest.mark.netns

# Retry at once: offline, each connect fails in milliseconds.
FAST = {"backoff_initial": 0.02, "backoff_max": 0.05, "stop_timeout": 2.0}
DEVICE = "15559990000:12@s.whatsapp.net"
RECORDING = "tests.server.whatsapp.neonize.real_transports:RecordingClients"
WHY_OFFLINE = ("could not connect to WhatsApp", "web.whatsapp.com")


def _fds(pid: int | str) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None  # the process just ended


def _wait(predicate, what: str, timeout: float = 60.0, tick=None):
    """Poll (and run ``tick`` each time) until ``predicate()``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Session:
    """One neonize session kept by a ProcessHost, as the runtime keeps it: a process
    that asks for a fresh one (exit RECYCLE_EXIT) is replaced; any other end is a
    failure. Counts the child's file descriptors after each failed connect."""

    def __init__(self, session_id: str, store_dir, options: dict, factory: str | None = None):
        self.session_id, self.store_dir = session_id, store_dir
        self.options, self.factory = dict(FAST, **options), factory
        self.events: list = []
        self.lock = threading.Lock()
        self.exits: list[int] = []
        self.fds: list[list[int]] = []  # per process: its fd count after each connect
        self.parent_fds: list[int] = []  # this process's fd count at each start
        self.host: ProcessHost | None = None

    def emit(self, event, done) -> None:
        with self.lock:
            self.events.append(event)
        if isinstance(event, SessionStatus) and "could not connect" in event.reason:
            count = _fds(self.host.pid)  # the child waits before its next attempt
            if count is not None:
                self.fds[-1].append(count)
        if done is not None:
            done.set()

    def statuses(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(e.status, e.reason) for e in self.events if isinstance(e, SessionStatus)]

    def failed_connects(self) -> int:
        return sum(
            1
            for status, reason in self.statuses()
            if status == "reconnecting" and "could not connect" in reason
        )

    def start(self) -> Session:
        self.parent_fds.append(_fds("self"))
        self.host = ProcessHost(
            session_id=self.session_id,
            transport_name="neonize",
            store_dir=self.store_dir,
            options=self.options,
            emit=self.emit,
            factory=self.factory,
            stop_timeout=3.0,
        )
        self.host.start()
        self.fds.append([])
        return self

    def tick(self) -> None:
        host = self.host
        if host.alive():
            return
        code = host.process.wait()
        self.exits.append(code)
        host.stop(1)  # closes the channel
        assert code == RECYCLE_EXIT, f"session {self.session_id}: {host.exit_reason()}"
        self.start()

    def stop(self) -> None:
        if self.host is not None:
            running = self.host.process.returncode is None
            self.host.stop(10)  # also closes the channel of a process that ended
            if running:
                self.exits.append(self.host.process.returncode)


def _run(sessions, until, what: str, timeout: float = 60.0) -> None:
    def tick():
        for session in sessions:
            session.tick()

    _wait(lambda: all(until(s) for s in sessions), what, timeout, tick)


def _store(store_dir, options: dict) -> None:
    """Let the real library create a device store (Go does on its first connect); in
    this process, one client at a time, to save a process start."""
    statuses: list[SessionStatus] = []
    transport = NeonizeTransport(
        session_id="maker", store_dir=store_dir, emit=statuses.append, options=dict(FAST, **options)
    )
    transport.start()
    try:
        _wait(
            lambda: any("could not connect" in e.reason for e in list(statuses)),
            "the store created",
        )
    finally:
        transport.stop()


# --- many sessions, each in its process, failing and retrying -----------------------------


def test_sessions_connecting_and_failing_at_once_never_abort_and_each_says_why(tmp_path):
    assert_offline()
    sessions = [
        Session(f"s{n}", tmp_path / f"s{n}", {"connects_per_process": 5}).start() for n in range(3)
    ]
    try:
        # 12 failed connects each: every session goes through three processes, all of
        # them dialing, failing, recycling at the same time.
        _run(sessions, lambda s: s.failed_connects() >= 12, "12 failed connects each")
    finally:
        for session in sessions:
            session.stop()
    for session in sessions:
        # Every process ended by asking for a fresh one or by being stopped: no abort,
        # no signal, no Go fatal error (exit 2).
        # (The last may have been asking for a fresh process when it was stopped.)
        assert set(session.exits[:-1]) == {RECYCLE_EXIT}, session.exits
        assert session.exits[-1] in (0, RECYCLE_EXIT), session.exits
        status, reason = [s for s in session.statuses() if s[1] != "starting"][-1]
        assert status == "reconnecting", session.statuses()[-3:]
        assert all(part in reason for part in WHY_OFFLINE), reason


# --- leaks per connect: bounded by a fresh process ----------------------------------------


def test_file_descriptors_stay_flat_across_many_reconnects(tmp_path):
    assert_offline()
    session = Session("s1", tmp_path / "s1", {"connects_per_process": 4}).start()
    try:
        _run(
            [session],
            lambda s: s.exits.count(RECYCLE_EXIT) >= 3 and s.fds[-1],
            "three fresh processes",
        )
    finally:
        session.stop()
    assert session.failed_connects() >= 12
    # Within a process the count grows with each connect (Go never closes a store it
    # opened: 2 fds each on SQLite), so the transport hands over to a fresh process
    # after 4: at the same point of its life, no process holds more than the first.
    first, *later = session.fds[:3]
    assert len(first) == 4 and all(len(counts) == 4 for counts in later), session.fds
    for counts in later:
        assert all(n <= m + 1 for n, m in zip(counts, first, strict=True)), session.fds
    # And the runtime's side (this process) holds nothing of the processes gone by.
    assert max(session.parent_fds[1:]) <= session.parent_fds[1] + 1, session.parent_fds


def test_postgresql_backends_stay_flat_across_many_reconnects(tmp_path, pg_store):
    assert_offline()
    app = f"kabar-fd-{os.getpid()}"
    session = Session(
        "s1", tmp_path / "s1", {"connects_per_process": 4, "store_url": pg_store.url(app)}
    ).start()
    seen: list[int] = []

    def backends_counted(s: Session) -> bool:
        seen.append(pg_store.backends(app))
        return s.exits.count(RECYCLE_EXIT) >= 3

    try:
        _run([session], backends_counted, "three fresh processes")
    finally:
        session.stop()
    assert session.failed_connects() >= 12
    # One backend per Go connect, at most one process's worth at any time (a dying
    # process's backends may linger a moment while the next one starts).
    assert max(seen) <= 2 * (4 + 1), seen
    _wait(lambda: pg_store.backends(app) == 0, "every backend gone after the stop")


# --- stop, then start --------------------------------------------------------------------


def test_stop_then_start_in_one_process_never_breaks_the_new_client(tmp_path):
    assert_offline()
    statuses: list[SessionStatus] = []
    uuids: list[str] = []

    def real_client(name, **kwargs):
        uuids.append(kwargs["uuid"])
        return new_neonize_client(name, **kwargs)

    transport = NeonizeTransport(
        session_id="s1",
        store_dir=tmp_path,
        emit=statuses.append,
        options=dict(FAST, connects_per_process=1000),
        client_factory=real_client,
    )

    def failed() -> int:
        return sum(1 for e in list(statuses) if "could not connect" in e.reason)

    try:
        for _ in range(4):
            before = failed()
            transport.start()
            _wait(lambda b=before: failed() >= b + 3, "the new client connecting")
            assert transport.is_connected() is False
            with pytest.raises(NotConnected):
                transport.is_on_whatsapp(["15550001111"])
            transport.stop()
        transport.start()
        before = failed()
        _wait(lambda: failed() >= before + 5, "the last client still retrying")
    finally:
        transport.stop()
    # A Go client per start, under a uuid of its own: a late Go Stop of an earlier one
    # can never reach the new one (issue 12, defect 3).
    assert uuids == [f"s1#{n}" for n in range(1, 6)]
    assert not transport.recycle_requested.is_set()


def test_stop_then_start_of_a_session_process_never_breaks_the_new_one(tmp_path):
    assert_offline()
    for _ in range(2):
        session = Session("s1", tmp_path / "s1", {}).start()
        _run([session], lambda s: s.failed_connects() >= 2, "the session retrying")
        session.stop()
        assert session.exits == [0]


# --- resuming a stored device ----------------------------------------------------------------


def _resume(store_dir, saved_jid: str, *, pg=None, device_row: bool) -> Session:
    options = {"store_url": pg.url()} if pg is not None else {}
    _store(store_dir, options)
    if device_row:
        insert_device(DEVICE, sqlite_path=store_dir / SQLITE_STORE, pg=pg)
    (store_dir / DEVICE_FILE).write_text(json.dumps({"jid": saved_jid}))
    session = Session("s1", store_dir, options, factory=RECORDING).start()
    try:
        _run([session], lambda s: s.failed_connects() >= 3, "three connect attempts")
    finally:
        session.stop()
    assert session.exits == [0]  # no abort (a nil device would be a SIGSEGV)
    return session


@pytest.mark.parametrize(
    "saved", [DEVICE, "15559990000@s.whatsapp.net"], ids=["full-jid", "bare-jid-of-older-kabar"]
)
def test_a_sqlite_store_resumes_its_device_by_its_full_jid(tmp_path, saved):
    assert_offline()
    session = _resume(tmp_path / "s1", saved, device_row=True)
    assert {(c["jid"], c["new_device"]) for c in recorded_clients(tmp_path / "s1")} == {
        (DEVICE, False)
    }
    assert json.loads((tmp_path / "s1" / DEVICE_FILE).read_text()) == {"jid": DEVICE}
    assert not any("device_missing" in reason for _, reason in session.statuses())


def test_a_postgresql_store_resumes_its_device_by_its_full_jid(tmp_path, pg_store):
    assert_offline()
    session = _resume(tmp_path / "s1", DEVICE, pg=pg_store, device_row=True)
    assert {(c["jid"], c["new_device"]) for c in recorded_clients(tmp_path / "s1")} == {
        (DEVICE, False)
    }
    assert not any("device_missing" in reason for _, reason in session.statuses())


def _pairs_afresh(store_dir, session: Session) -> None:
    assert [(c["jid"], c["new_device"]) for c in recorded_clients(store_dir)][:1] == [(None, True)]
    reasons = [reason for status, reason in session.statuses() if status == "connecting"]
    assert any(
        reason.startswith(
            f"device_missing: the store no longer holds this session's device {DEVICE}"
        )
        for reason in reasons
    ), reasons
    assert not (store_dir / DEVICE_FILE).exists()


def test_a_sqlite_store_without_the_device_pairs_afresh_and_says_why(tmp_path):
    assert_offline()
    session = _resume(tmp_path / "s1", DEVICE, device_row=False)
    _pairs_afresh(tmp_path / "s1", session)


def test_a_postgresql_store_without_the_device_pairs_afresh_and_says_why(tmp_path, pg_store):
    assert_offline()
    session = _resume(tmp_path / "s1", DEVICE, pg=pg_store, device_row=False)
    _pairs_afresh(tmp_path / "s1", session)


# --- a QR code nobody scans ----------------------------------------------------------------


def test_a_qr_nobody_scans_ends_the_session_process_by_itself(tmp_path):
    assert_offline()
    session = Session(
        "s1",
        tmp_path / "s1",
        {},
        factory="tests.server.whatsapp.neonize.real_transports:UnscannedQr",
    )
    session.start()
    host = session.host
    try:
        _wait(lambda: not host.alive(), "the process to end by itself", timeout=30)
    finally:
        session.stop()
    assert host.process.returncode == RECYCLE_EXIT, host.exit_reason()
    statuses = session.statuses()
    assert "qr" in [s for s, _ in statuses]
    status, reason = statuses[-1]
    assert status == "stopped" and reason.startswith("qr_expired"), statuses
