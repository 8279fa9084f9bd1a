"""Session hosts: a session in a child process, reached over its channel, and what the
runtime does when that process dies or hangs. The sandbox plays WhatsApp in the child."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import sqlalchemy as sa

from server.events import MessageReceived, SessionStatus
from server.models import Message, SessionStatusChange, WaSession, db
from server.runtime.hosts import ProcessHost
from server.whatsapp.transport import TransportError
from tests.server.conftest import wait_for


class Recorder:
    """The runtime's side of emit: keeps events, acknowledges stored ones at once
    (unless told to hold them)."""

    def __init__(self, hold: bool = False):
        self.events: list = []
        self.held: list = []
        self.hold = hold
        self.lock = threading.Lock()

    def __call__(self, event, done) -> None:
        with self.lock:
            self.events.append(event)
        if done is not None:
            if self.hold:
                self.held.append(done)
            else:
                done.set()

    def statuses(self) -> list[str]:
        with self.lock:
            return [e.status for e in self.events if isinstance(e, SessionStatus)]


def _host(tmp_path, emit, factory="server.whatsapp.sandbox:SandboxTransport", **kwargs):
    host = ProcessHost(
        session_id="s1",
        transport_name="sandbox",
        store_dir=tmp_path,
        options={"receipts": False},
        emit=emit,
        factory=factory,
        stop_timeout=1.0,
        **kwargs,
    )
    host.start()
    return host


def _wait(predicate, what):
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def host(tmp_path):
    recorder = Recorder()
    host = _host(tmp_path, recorder)
    host.recorder = recorder
    yield host
    host.stop(5)


def test_a_session_in_its_own_process_pairs_and_answers_calls(host):
    _wait(lambda: "qr" in host.recorder.statuses(), "a QR from the child")
    assert host.pid != os.getpid() and host.alive()
    identity = host.transport.scan(phone="6281100000001", push_name="Desk")
    assert identity.phone == "6281100000001"
    _wait(lambda: host.recorder.statuses()[-1:] == ["connected"], "connected")
    assert host.transport.is_connected() is True
    message = host.transport.inject(sender="6281200000002", text="halo")
    received = [e for e in host.recorder.events if isinstance(e, MessageReceived)]
    assert [m.message.id for m in received] == [message.id]


def test_errors_keep_their_meaning_across_the_process_boundary(host):
    with pytest.raises(TransportError) as error:
        host.transport.inject(sender="6281200000002", text="not paired yet")
    assert error.value.code == "session_not_connected" and not error.value.permanent
    _wait(lambda: "qr" in host.recorder.statuses(), "a QR")  # a scan needs one shown
    host.transport.scan(phone="6281100000001")
    with pytest.raises(TransportError) as error:
        host.transport.scan(phone="6281100000001")
    assert (error.value.code, error.value.permanent) == ("already_paired", True)
    with pytest.raises(TransportError) as error:
        host.transport.no_such_method()
    assert "AttributeError" in str(error.value)


def test_an_inbound_message_waits_until_the_runtime_stored_it(tmp_path):
    recorder = Recorder(hold=True)
    host = _host(tmp_path, recorder)
    try:
        _wait(lambda: "qr" in recorder.statuses(), "a QR")
        host.transport.scan(phone="6281100000001")
        answer: list = []
        caller = threading.Thread(
            target=lambda: answer.append(host.transport.inject(sender="6281200000002", text="halo"))
        )
        caller.start()
        _wait(lambda: recorder.held, "the message to reach the runtime")
        caller.join(0.3)
        assert caller.is_alive() and not answer  # WhatsApp is not told "received" yet
        recorder.held[0].set()
        caller.join(10)
        assert answer and answer[0].text == "halo"
    finally:
        host.stop(5)


def test_a_process_killed_mid_call_answers_not_running_and_says_why(host):
    _wait(lambda: "qr" in host.recorder.statuses(), "a QR")
    os.kill(host.pid, signal.SIGKILL)
    _wait(lambda: not host.alive(), "the process to end")
    with pytest.raises(TransportError) as error:
        host.transport.scan(phone="6281100000001")
    assert error.value.code == "session_not_running"
    assert host.exit_reason() == "the session process was killed by SIGKILL"


def test_an_abort_in_the_child_is_reported_as_such(tmp_path):
    host = _host(tmp_path, Recorder(), factory="tests.server.runtime.transports:Aborting")
    try:
        with pytest.raises(TransportError):
            host.transport.abort()
        _wait(lambda: not host.alive(), "the process to end")
        assert "SIGABRT" in host.exit_reason() and "Go runtime aborted" in host.exit_reason()
    finally:
        host.stop(5)


def test_a_transport_that_never_stops_is_ended_within_the_stop_timeout(tmp_path):
    recorder = Recorder()
    host = _host(tmp_path, recorder, factory="tests.server.runtime.transports:HangingStop")
    _wait(lambda: "qr" in recorder.statuses(), "a QR")
    host.stop(3)  # the child gives its transport 1 s, then exits by itself
    assert host.process.returncode is not None
    assert not host.alive()


# --- the runtime, with sandbox sessions in processes -----------------------------------


@pytest.fixture
def process_runtime(app):
    app.config["KABAR"]["SESSION_PROCESSES"] = ["sandbox"]
    app.config["KABAR"]["SESSION_STOP_SECONDS"] = 2
    yield
    app.config["KABAR"]["SESSION_PROCESSES"] = ["neonize"]
    app.config["KABAR"]["SESSION_STOP_SECONDS"] = 10


def _paired_session(client, headers, label, phone):
    created = client.post(
        "/api/v1/sessions",
        headers=headers,
        json={"label": label, "transport": "sandbox", "settings": {"pacing": {"enabled": False}}},
    )
    assert created.status_code == 201, created.json
    sid = created.json["id"]
    wait_for(
        lambda: client.get(f"/api/v1/sessions/{sid}", headers=headers).json["status"] == "qr",
        what="a QR",
    )
    scanned = client.post(
        f"/api/v1/sandbox/sessions/{sid}/scan", headers=headers, json={"phone": phone}
    )
    assert scanned.status_code == 200, scanned.json
    wait_for(
        lambda: (
            client.get(f"/api/v1/sessions/{sid}", headers=headers).json["status"] == "connected"
        ),
        what="connected",
    )
    return sid


def _statuses(sid):
    return [
        (c.status, c.reason)
        for c in db.session.scalars(
            sa.select(SessionStatusChange)
            .where(SessionStatusChange.session_id == sid)
            .order_by(SessionStatusChange.id)
        )
    ]


def test_sessions_in_processes_send_and_receive_through_the_runtime(
    process_runtime, client, operator_headers, runtime
):
    sid = _paired_session(client, operator_headers, "Desk", "6281100000001")
    live = runtime.live[sid]
    assert live.host.pid != os.getpid()
    assert (
        "session process pid"
        in client.get(f"/api/v1/sessions/{sid}", headers=operator_headers).json["host"]
    )
    sent = client.post(
        f"/api/v1/sessions/{sid}/messages",
        headers=operator_headers,
        json={"to": "081234567890", "text": "halo dari proses"},
    )
    assert sent.status_code == 202, sent.json
    wait_for(
        lambda: client.get(
            f"/api/v1/sandbox/sessions/{sid}/received", headers=operator_headers
        ).json["items"],
        what="delivered",
    )
    said = client.post(
        f"/api/v1/sandbox/sessions/{sid}/messages",
        headers=operator_headers,
        json={"from": "081234567890", "text": "balasan"},
    )
    assert said.status_code in (200, 201, 202), said.json
    wait_for(
        lambda: db.session.scalar(
            sa.select(Message).where(Message.session_id == sid, Message.text == "balasan")
        ),
        what="the reply stored",
    )


def test_killing_one_session_process_restarts_that_session_alone(
    process_runtime, client, operator_headers, runtime
):
    victim = _paired_session(client, operator_headers, "Victim", "6281100000001")
    other = _paired_session(client, operator_headers, "Other", "6281100000002")
    other_before = _statuses(other)
    old_pid = runtime.live[victim].host.pid
    os.kill(old_pid, signal.SIGKILL)
    wait_for(
        lambda: any("killed by SIGKILL" in reason for _, reason in _statuses(victim)),
        what="the crash shown on the session",
    )
    wait_for(
        lambda: (
            _statuses(victim)[-1][0] == "connected"
            and victim in runtime.live
            and runtime.live[victim].host.pid != old_pid
        ),
        what="the session back",
    )
    session = client.get(f"/api/v1/sessions/{victim}", headers=operator_headers).json
    assert session["restarts"] == 1 and session["status"] == "connected"
    assert _statuses(other) == other_before  # the other session never noticed
    assert db.session.get(WaSession, other).restarts == 0


def test_a_session_process_that_keeps_crashing_backs_off(
    process_runtime, app, client, operator_headers, runtime
):
    sid = _paired_session(client, operator_headers, "Flaky", "6281100000001")
    for crash in (1, 2):
        pid = runtime.live[sid].host.pid
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda c=crash, p=pid: (
                sid in runtime.restarts
                and runtime.restarts[sid].crashes == c - 1
                and (sid not in runtime.live or runtime.live[sid].host.pid != p)
            ),
            what=f"crash {crash} seen",
        )
        wait_for(
            lambda p=pid: (
                sid in runtime.live
                and runtime.live[sid].host.alive()
                and runtime.live[sid].host.pid != p
            ),
            what="restarted",
        )
    reasons = [r for s, r in _statuses(sid) if s == "reconnecting"]
    assert reasons[0].endswith("starting again in 1 s")
    assert reasons[1].endswith("starting again in 2 s")


def test_a_transport_asking_for_a_fresh_process_gets_one_without_counting_a_crash(
    process_runtime, app, client, operator_headers, runtime, monkeypatch
):
    from server.runtime import hosts

    monkeypatch.setitem(hosts.FACTORIES, "sandbox", "tests.server.runtime.transports:Recycling")
    sid = _paired_session(client, operator_headers, "Recycled", "6281100000001")
    pid = runtime.live[sid].host.pid
    runtime.live[sid].transport.recycle()
    wait_for(
        lambda: any("asked to be started afresh" in r for _, r in _statuses(sid)),
        what="the recycle shown on the session",
    )
    wait_for(
        lambda: (
            sid in runtime.live
            and runtime.live[sid].host.pid != pid
            and _statuses(sid)[-1][0] == "connected"
        ),
        what="a fresh process",
    )
    assert db.session.get(WaSession, sid).restarts == 0


def test_stopping_a_hung_session_does_not_hold_up_the_runtime(
    process_runtime, app, client, operator_headers, runtime, monkeypatch
):
    from server.runtime import hosts

    monkeypatch.setitem(hosts.FACTORIES, "sandbox", "tests.server.runtime.transports:HangingStop")
    hung = _paired_session(client, operator_headers, "Hung", "6281100000001")
    stopped = client.post(f"/api/v1/sessions/{hung}/stop", headers=operator_headers)
    assert stopped.status_code in (200, 202), stopped.json
    # While the hung process is being ended, the runtime goes on: a new session pairs.
    monkeypatch.setitem(hosts.FACTORIES, "sandbox", "server.whatsapp.sandbox:SandboxTransport")
    _paired_session(client, operator_headers, "Next", "6281100000002")
    wait_for(lambda: hung not in runtime.reaping, what="the hung process ended")
    assert hung not in runtime.live


def test_a_session_host_loads_neither_the_web_app_nor_the_database():
    import subprocess
    import sys

    code = (
        "import sys, server.runtime.session_host, server.whatsapp.sandbox; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'flask', 'sqlalchemy', 'marshmallow', 'psycopg', 'jinja2'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
