"""The connection: start, the connect loop, stop, logout, lifecycle events."""

from __future__ import annotations

import inspect

import pytest
from neonize.exc import NeonizeError

from server.events import (
    SessionStatus,
)
from server.whatsapp.neonize import NeonizeTransport
from server.whatsapp.transport import NotConnected, TransportError
from tests.server.whatsapp.neonize.conftest import (
    NEWCLIENT_METHODS,
    FakeClient,
    N,
    Recorder,
    feed,
    fill_required,
    nz,
    out,
    wait_for,
)


def test_fake_matches_newclient():
    """Every NewClient method the spy stands in for exists with the same parameters."""
    for name in NEWCLIENT_METHODS:
        real = inspect.signature(getattr(nz.NewClient, name))
        spy = inspect.signature(getattr(FakeClient, name))
        assert list(spy.parameters) == list(real.parameters), name
    assert isinstance(inspect.getattr_static(nz.NewClient, "is_connected"), property)


def test_connected_reports_identity_without_get_me(live):
    transport, spy, recorder = live
    status = recorder.last(SessionStatus)
    assert (status.status, status.jid, status.phone, status.push_name) == (
        "connected",
        "15559990000@s.whatsapp.net",
        "15559990000",
        "Kabar Bot",
    )
    assert not spy.called("get_me")  # the Device from code 0 sufficed
    assert transport.me().lid == "999888777@lid"
    assert transport.is_connected()


def test_held_back_events_arrive_after_the_device(make):
    """Go sends the code-0 Device before any event (FetchMe), so the identity never
    needs get_me, also after a QR pairing whose events Go held back."""
    transport, client, recorder = make(paired=False)
    client.qr(b"2@code")
    client.scan()
    wait_for(lambda: "connected" in recorder.statuses(), what="connected")
    assert recorder.statuses()[-3:] == ["qr", "connecting", "connected"]
    assert recorder.last(SessionStatus).phone == "15559990000"
    assert not client.called("get_me")


@pytest.mark.parametrize(
    "event, status, words",
    [
        (N.LoggedOut(OnConnect=False, Reason=N.LOGGED_OUT), "logged_out", ["logged out", "phone"]),
        (
            N.TemporaryBan(Code=N.TemporaryBan.SEND_TO_TOO_MANY_PEOPLE, Expire=3600),
            "banned",
            ["SEND_TO_TOO_MANY_PEOPLE", "3600 s"],
        ),
        (
            fill_required(N.ConnectFailure(Reason=N.CLIENT_OUTDATED, Message="update")),
            "failed",
            ["CLIENT_OUTDATED", "update"],
        ),
        (
            fill_required(N.ConnectFailure(Reason=N.SERVICE_UNAVAILABLE, Message="")),
            "reconnecting",
            ["SERVICE_UNAVAILABLE"],
        ),
        (N.Disconnected(status=True), "disconnected", ["reconnecting automatically"]),
    ],
)
def test_lifecycle_events(live, event, status, words):
    transport, spy, recorder = live
    feed(spy, event)
    last = recorder.last(SessionStatus)
    assert last.status == status
    for word in words:
        assert word in last.reason
    assert not transport.is_connected()


def test_no_retry_after_the_session_ended(make):
    transport, spy, recorder = make(backoff_initial=0.01)
    feed(spy, N.Connected(status=True))
    feed(spy, N.LoggedOut(OnConnect=True, Reason=N.MAIN_DEVICE_GONE))
    assert "while Kabar was offline (MAIN_DEVICE_GONE)" in recorder.last(SessionStatus).reason
    spy.stop()  # connect() returns; the runtime, not the adapter, decides what comes next
    transport._runner.join(2)
    assert not transport._runner.is_alive()  # the connect loop ended instead of retrying
    assert recorder.statuses()[-1] == "logged_out" and len(spy.called("connect")) == 1


@pytest.mark.parametrize(
    "event, status, word",
    [
        (N.ClientOutdated(), "failed", "client_outdated"),
        (N.StreamReplaced(), "stopped", "stream_replaced"),
    ],
)
def test_client_outdated_and_stream_replaced_are_statuses(live, event, status, word):
    """whatsmeow dispatches only these two (no ConnectFailure/Disconnected) and does not
    reconnect: each is a status with its reason, and the connect loop ends."""
    transport, client, recorder = live
    feed(client, event)
    last = recorder.last(SessionStatus)
    assert (last.status, last.reason.split(":")[0]) == (status, word)
    assert not transport.is_connected()
    client.stop()
    transport._runner.join(2)
    assert not transport._runner.is_alive() and len(client.called("connect")) == 1


def test_an_event_loop_ended_by_an_error_asks_for_a_fresh_process(live):
    """Go's event loop ends when it cannot encode a value (server-error receipts, new
    ban codes): the old client may stay connected with no owner, so recycle."""
    transport, client, recorder = live
    client.connect_error = None
    client.loop_error = NeonizeError("proto: invalid enum value")
    client.stop()
    wait_for(transport.recycle_requested.is_set, what="recycle")
    assert "event loop ended" in recorder.last(SessionStatus).reason


def test_connect_attempts_per_process_are_bounded(tmp_path):
    """Each Go connect keeps a store connection (defect 4): after the bound the transport
    asks for a fresh process instead of leaking on."""
    recorder = Recorder()

    def factory(name, **kwargs):
        client = FakeClient(name, **kwargs)
        client.connect_error = NeonizeError("dial tcp: lookup web.whatsapp.com: no such host")
        return client

    transport = NeonizeTransport(
        session_id="x",
        store_dir=tmp_path,
        emit=recorder,
        options={"backoff_initial": 0.01, "connects_per_process": 3, "route_go_stdout": False},
        client_factory=factory,
    )
    transport.start()
    wait_for(transport.recycle_requested.is_set, what="recycle")
    transport._runner.join(2)
    assert not transport._runner.is_alive()
    assert (
        "restarting the session's process after 3 attempts" in recorder.last(SessionStatus).reason
    )
    transport.stop()


def test_logout(live):
    transport, spy, recorder = live
    transport.logout()
    assert spy.called("logout") and recorder.last(SessionStatus).status == "logged_out"
    assert transport.me() is None
    feed(spy, N.LoggedOut(OnConnect=False, Reason=N.LOGGED_OUT))  # not reported twice
    assert recorder.statuses().count("logged_out") == 1


def test_slow_logout_does_not_hold_the_control_thread(make):
    transport, spy, recorder = make(call_timeout=0.2)
    feed(spy, N.Connected(status=True))
    spy.logout_delay = 0.5
    with pytest.raises(TransportError) as caught:  # answered before WhatsApp did
        transport.logout()
    assert caught.value.code == "timeout" and "logged_out" not in recorder.statuses()
    wait_for(lambda: "logged_out" in recorder.statuses(), what="the late logout")


def test_calls_while_not_connected_never_touch_the_client(make):
    transport, spy, _ = make(paired=False)
    calls = [
        lambda: transport.send(out(text="x")),
        lambda: transport.send(out("reaction", text="👍", quoted_id="Q")),
        lambda: transport.send(out("revoke", quoted_id="Q")),
        lambda: transport.mark_read("15550001111@s.whatsapp.net", "", ["A"]),
        lambda: transport.presence("15550001111@s.whatsapp.net", "composing"),
        lambda: transport.is_on_whatsapp(["15550001111"]),
        lambda: transport.profile_picture("15550001111@s.whatsapp.net"),
        lambda: transport.user_info(["15550001111@s.whatsapp.net"]),
        lambda: transport.groups(),
        lambda: transport.group_info("120363012345678901@g.us"),
        lambda: transport.download({"neonize": ""}),
        lambda: transport.logout(),
    ]
    for call in calls:
        with pytest.raises(NotConnected):
            call()
    assert [name for name, _, _ in spy.calls] == ["connect"]
    assert transport.me() is None and not transport.is_connected()


def test_no_network_retries_with_backoff_and_stops(tmp_path):
    recorder, clients = Recorder(), []

    def factory(name, **kwargs):
        client = FakeClient(name, **kwargs)
        client.connect_error = NeonizeError(
            "failed to dial whatsapp web websocket: dial tcp: lookup web.whatsapp.com: no such host"
        )
        clients.append(client)
        return client

    transport = NeonizeTransport(
        session_id="offline",
        store_dir=tmp_path,
        emit=recorder,
        options={"backoff_initial": 0.02, "backoff_max": 0.08},
        client_factory=factory,
    )
    transport.start()  # returns at once: the first status says so
    assert recorder.statuses()[0] == "connecting"
    wait_for(lambda: recorder.statuses().count("reconnecting") >= 5, what="five retries")
    reasons = [e.reason for e in recorder.of(SessionStatus) if e.status == "reconnecting"]
    assert "no such host" in reasons[0] and "attempt 1" in reasons[0]
    assert [r.rsplit("next try in ", 1)[1] for r in reasons[:5]] == [
        "0.02 s",
        "0.04 s",
        "0.08 s",
        "0.08 s",
        "0.08 s",
    ]
    transport.stop()
    assert not transport._runner.is_alive()
    settled = len(recorder.events)
    transport._runner.join()
    assert len(recorder.events) == settled  # nothing after stop()


def test_stop_returns_even_if_connect_never_does(make):
    """Go stuck in FetchMe after the QR channel closed ignores Stop (defect 5)."""
    transport, client, _ = make(paired=False, stop_timeout=0.3)
    client.qr(b"2@code")
    client.qr_channel_closed()
    wait_for(transport.recycle_requested.is_set, what="recycle")
    transport.stop()
    assert client.called("stop") and transport._runner.is_alive()


def test_unusable_store_fails_without_retrying(make):
    transport, spy, recorder = make(backoff_initial=0.01)
    spy.connect_error = NeonizeError("failed to upgrade database: disk I/O error")
    spy.stop()  # end the current connect(); the next one raises
    wait_for(lambda: "failed" in recorder.statuses(), what="failed")
    assert recorder.last(SessionStatus).reason.startswith("store_error")
    transport._runner.join(2)
    assert not transport._runner.is_alive() and len(spy.called("connect")) == 2


def test_a_store_two_sessions_upgrade_at_once_is_tried_again(make):
    """Sessions sharing one new PostgreSQL store, started together, race to create
    whatsmeow's tables; the loser must try again (the winner made them), not be
    halted as if its store were unusable (found by bench/sessions.py neonize)."""
    transport, spy, recorder = make(backoff_initial=0.01)
    spy.connect_error = NeonizeError(
        "failed to upgrade database: failed to create version table: pq: duplicate key "
        'value violates unique constraint "pg_type_typname_nsp_index" (23505)'
    )
    spy.stop()  # end the current connect(); the next ones raise
    wait_for(lambda: recorder.statuses().count("reconnecting") >= 2, what="retries")
    assert "failed" not in recorder.statuses()
    assert "duplicate key" in recorder.last(SessionStatus).reason
    transport.stop()


def test_the_reason_keeps_the_cause_of_a_long_whatsmeow_error(make):
    """whatsmeow wraps errors outside in; cut at the status's 255 characters, the reason
    lost the cause and the next try (seen with no network: "…dial udp 10.255.25")."""
    transport, spy, recorder = make(backoff_initial=0.01)
    spy.connect_error = NeonizeError(
        "failed to dial whatsapp web websocket: failed to WebSocket dial: failed to send "
        'handshake request: Get "https://web.whatsapp.com/ws/chat": dial tcp: lookup '
        "web.whatsapp.com on 10.255.255.53:53: dial udp 10.255.255.53:53: connect: "
        "network is unreachable"
    )
    spy.stop()

    def failed_attempts() -> list[str]:
        return [
            e.reason
            for e in recorder.of(SessionStatus)
            if e.status == "reconnecting" and "(attempt " in e.reason
        ]

    wait_for(failed_attempts, what="a failed attempt")
    reason = failed_attempts()[0]
    assert len(reason) <= 255
    assert reason.startswith("could not connect to WhatsApp (attempt ")
    assert "failed to dial whatsapp web websocket: … " in reason
    assert "connect: network is unreachable; next try in " in reason
    transport.stop()


def test_gives_up_after_max_connect_attempts(make):
    transport, spy, recorder = make(max_connect_attempts=2, backoff_initial=0.01)
    spy.connect_error = NeonizeError("dial tcp: i/o timeout")
    spy.stop()
    wait_for(lambda: "failed" in recorder.statuses(), what="failed")
    assert "after 2 attempts" in recorder.last(SessionStatus).reason
