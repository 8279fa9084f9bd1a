"""The device store: its name, the client over it, resuming a device."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.whatsapp.neonize import NeonizeTransport, new_neonize_client, sqlite_store_name
from server.whatsapp.transport import TransportError
from tests.server.whatsapp.neonize.conftest import (
    FakeClient,
    N,
    Recorder,
    device,
    feed,
    jid,
)


def test_sqlite_store_name_opens_wal_store(tmp_path):
    import sqlite3

    from neonize._binder import func_callback_bytes2, gocode
    from neonize.utils.log import log_whatsmeow

    path = tmp_path / "odd dir #1" / "whatsmeow.sqlite3"
    path.parent.mkdir()
    answer = gocode.GetAllDevices(sqlite_store_name(path).encode(),
                                  func_callback_bytes2(log_whatsmeow)).decode()
    assert not answer.startswith("error"), answer
    with sqlite3.connect(path) as con:
        assert con.execute("pragma journal_mode").fetchone()[0] == "wal"
        assert con.execute("select count(*) from sqlite_master where name = 'whatsmeow_device'"
                           ).fetchone()[0] == 1
    con.close()


def test_client_per_session_store(make, tmp_path):
    transport, spy, _ = make()
    assert spy.uuid == transport.session_id.encode()
    assert spy.name == sqlite_store_name(transport.store_dir / "whatsmeow.sqlite3")
    assert spy.name.endswith("?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_x=")


def test_postgres_store_pairs_a_new_device_then_resumes_it(make):
    url = "postgresql://kabar@db/wa"
    transport, spy, _ = make(store_url=url)
    assert spy.name == url and spy.factory_args["new_device"] and spy.factory_args["jid"] is None
    feed(spy, device(), code=0)
    feed(spy, N.Connected(status=True))
    transport.stop()
    again = NeonizeTransport(session_id="again", store_dir=transport.store_dir, emit=Recorder(),
                             options={"store_url": url},
                             client_factory=lambda name, **kw: FakeClient(name, **kw))
    client = again._new_client()
    assert client.factory_args["jid"].User == "15559990000"
    assert client.factory_args["new_device"] is False


def test_bad_store_url_fails_start(tmp_path):
    transport = NeonizeTransport(session_id="x", store_dir=tmp_path, emit=Recorder(),
                                 options={"store_url": "mysql://nope"},
                                 client_factory=FakeClient)
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
    transport = NeonizeTransport(session_id="n", store_dir=store, emit=Recorder(), options={},
                                 client_factory=FakeClient)
    transport.start()
    try:
        assert store.is_dir()
    finally:
        transport.stop()
