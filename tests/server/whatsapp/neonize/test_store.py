"""The device store: its name, the client over it, resuming a device."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.events import SessionStatus
from server.whatsapp.neonize import NeonizeTransport, new_neonize_client, sqlite_store_name
from server.whatsapp.transport import TransportError
from tests.server.whatsapp.neonize.conftest import (
    FakeClient,
    N,
    Recorder,
    device,
    feed,
    jid,
    wait_for,
)


def test_sqlite_store_name_opens_wal_store(tmp_path):
    import sqlite3

    from neonize._binder import func_callback_bytes2, gocode
    from neonize.utils.log import log_whatsmeow

    path = tmp_path / "odd dir #1" / "whatsmeow.sqlite3"
    path.parent.mkdir()
    answer = gocode.GetAllDevices(
        sqlite_store_name(path).encode(), func_callback_bytes2(log_whatsmeow)
    ).decode()
    assert not answer.startswith("error"), answer
    with sqlite3.connect(path) as con:
        assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert (
            con.execute(
                "select count(*) from sqlite_master where name = 'whatsmeow_device'"
            ).fetchone()[0]
            == 1
        )
    con.close()


def test_client_per_session_store(make, tmp_path):
    transport, spy, _ = make()
    assert spy.uuid == f"{transport.session_id}#1".encode()  # one Go uuid per start()
    assert spy.name == sqlite_store_name(transport.store_dir / "whatsmeow.sqlite3")
    assert spy.name.endswith("?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_x=")


def test_postgres_store_pairs_a_new_device_then_resumes_it(make, monkeypatch):
    from server.whatsapp.neonize import connection

    monkeypatch.setattr(connection, "stored_device", lambda store, path, jid: jid)
    url = "postgresql://kabar@db/wa"
    transport, spy, _ = make(store_url=url)
    assert spy.name == url and spy.factory_args["new_device"] and spy.factory_args["jid"] is None
    feed(spy, device(), code=0)
    feed(spy, N.Connected(status=True))
    transport.stop()
    again = NeonizeTransport(
        session_id="again",
        store_dir=transport.store_dir,
        emit=Recorder(),
        options={"store_url": url},
        client_factory=lambda name, **kw: FakeClient(name, **kw),
    )
    client = again._new_client()
    assert (client.factory_args["jid"].User, client.factory_args["jid"].Device) == (
        "15559990000",
        12,
    )  # the full device JID the Device event gave
    assert client.factory_args["new_device"] is False


def test_bad_store_url_fails_start(tmp_path):
    transport = NeonizeTransport(
        session_id="x",
        store_dir=tmp_path,
        emit=Recorder(),
        options={"store_url": "mysql://nope"},
        client_factory=FakeClient,
    )
    with pytest.raises(TransportError) as caught:
        transport.start()
    assert caught.value.code == "invalid_store_url" and caught.value.permanent


def test_new_neonize_client_keeps_session_uuid(tmp_path):
    """A real NewClient resuming a device by JID still has the session id as uuid."""
    client = new_neonize_client(str(tmp_path / "s.sqlite3"), uuid="ses-1", jid=jid("15559990000"))
    assert client.uuid == b"ses-1"
    assert not client._stop_finalizer.alive  # it would Stop(jid.User), not our client


def test_store_dir_is_created(tmp_path):
    store = Path(tmp_path) / "new" / "session"
    transport = NeonizeTransport(
        session_id="n", store_dir=store, emit=Recorder(), options={}, client_factory=FakeClient
    )
    transport.start()
    try:
        assert store.is_dir()
    finally:
        transport.stop()


def _store_with_device(path, jid_text):
    import sqlite3

    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")
        db.execute("INSERT INTO whatsmeow_device VALUES (?)", (jid_text,))
    db.close()


def test_resumes_by_full_device_jid_and_upgrades_a_bare_one(tmp_path):
    """device.json keeps user:device@server; an old bare user@server finds its device."""
    _store_with_device(tmp_path / "whatsmeow.sqlite3", "15559990000:12@s.whatsapp.net")
    (tmp_path / "device.json").write_text('{"jid": "15559990000@s.whatsapp.net"}')
    transport = NeonizeTransport(
        session_id="r", store_dir=tmp_path, emit=Recorder(), options={}, client_factory=FakeClient
    )
    client = transport._new_client()
    resumed = client.factory_args["jid"]
    assert (resumed.User, resumed.Device, resumed.Server) == ("15559990000", 12, "s.whatsapp.net")
    assert "15559990000:12@s.whatsapp.net" in (tmp_path / "device.json").read_text()


def test_a_device_gone_from_the_store_pairs_afresh_with_a_reason(tmp_path):
    """Resuming a JID the store lacks would make neonize call NewClient(nil) (abort)."""
    _store_with_device(tmp_path / "whatsmeow.sqlite3", "1:1@s.whatsapp.net")
    (tmp_path / "device.json").write_text('{"jid": "15559990000:12@s.whatsapp.net"}')
    recorder = Recorder()
    transport = NeonizeTransport(
        session_id="r", store_dir=tmp_path, emit=recorder, options={}, client_factory=FakeClient
    )
    client = transport._new_client()
    assert client.factory_args["jid"] is None and client.factory_args["new_device"]
    assert recorder.last(SessionStatus).reason.startswith("device_missing")
    assert not (tmp_path / "device.json").exists()


def test_postgres_down_at_start_is_retried_not_permanent(tmp_path):
    recorder = Recorder()
    (tmp_path / "device.json").write_text('{"jid": "15559990000:12@s.whatsapp.net"}')
    transport = NeonizeTransport(
        session_id="pg",
        store_dir=tmp_path,
        emit=recorder,
        options={
            "store_url": "postgresql://kabar@127.0.0.1:1/wa",
            "backoff_initial": 0.01,
            "backoff_max": 0.02,
            "route_go_stdout": False,
        },
        client_factory=FakeClient,
    )
    transport.start()
    try:
        wait_for(lambda: recorder.statuses().count("reconnecting") >= 2, what="retries")
        assert "failed" not in recorder.statuses()
        assert recorder.last(SessionStatus).reason.startswith("store_unavailable")
    finally:
        transport.stop()
