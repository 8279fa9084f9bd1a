"""`kabar demo`: a helpdesk ready to talk to; and reading the sandbox's side of chats."""

from __future__ import annotations

import shutil

import sqlalchemy as sa

from server import demo
from server.models import Person, StaffProfile, WaSession, Workflow, db
from tests.server.conftest import unpaced, wait_for
from tests.server.workflows.conftest import WORKFLOWS


def test_demo_prepares_once_pairs_and_answers(
    app, admin, runtime, kabar, client, admin_headers, tmp_path, monkeypatch
):
    shutil.copytree(WORKFLOWS / "helpdesk", tmp_path / "helpdesk")
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOWS_DIR", str(tmp_path))
    first = demo.prepare()
    again = demo.prepare()
    assert first == again  # nothing is made twice
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WaSession)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StaffProfile)) == 1
    enabled = db.session.scalars(sa.select(Workflow.name).where(Workflow.enabled)).all()
    assert set(enabled) == set(first.workflows) and "helpdesk-request" in enabled
    text = demo.instructions(first, "http://127.0.0.1:7308")
    assert f"--session {first.session_id}" in text and "#request" in text

    demo.pair_when_ready(app, first.session_id).join(timeout=30)
    wait_for(
        lambda: (
            db.session.get(WaSession, first.session_id, populate_existing=True).status
            == "connected"
        ),
        what="the demo session paired",
    )
    unpaced(first.session_id)
    said = kabar(
        "sandbox",
        "say",
        "--session",
        first.session_id,
        "--from",
        first.reporter_phone,
        "#request lampu mati",
    )
    assert said.exit_code == 0, said.output
    wait_for(
        lambda: "Nomor Tracking" in kabar("sandbox", "inbox", "--session", first.session_id).output,
        what="the helpdesk's answer in the sandbox inbox",
    )
    listed = client.get(
        f"/api/v1/sandbox/sessions/{first.session_id}/received",
        headers=admin_headers,
        query_string={"to": first.reporter_phone},
    )
    assert listed.status_code == 200
    (item,) = listed.json["items"]
    assert "Budi Santoso" in item["content"]["text"]
    bad = client.get(
        f"/api/v1/sandbox/sessions/{first.session_id}/received",
        headers=admin_headers,
        query_string={"to": "not a phone"},
    )
    assert bad.status_code == 422
