"""Chat page: history with statuses, sending text, a file and a location through the
outbox, and a virtual contact speaking in a sandbox session."""

from __future__ import annotations

import io

import sqlalchemy as sa

from server.models import Message, OutboxMessage, db
from tests.server.ui.conftest import flashes, wait_for


def _session(browser, runtime=None) -> str:
    answer = browser.submit("/sessions", {"label": "Chat", "transport": "sandbox"})
    return answer.headers["Location"].rsplit("/", 1)[-1]


def test_send_text_then_see_it_in_the_chat_with_its_status(operator_browser):
    session_id = _session(operator_browser)
    answer = operator_browser.submit(
        f"/sessions/{session_id}/chat/send",
        {"to": "0812-3456-789", "kind": "text", "text": "Halo!", "idempotency_key": "k1"},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"/sessions/{session_id}/chat?chat=628123456789"
    row = db.session.scalar(sa.select(OutboxMessage))
    assert (row.to_jid, row.payload["text"], row.source) == (
        "628123456789@s.whatsapp.net",
        "Halo!",
        "dashboard",
    )
    # Not sent yet (the runtime is off): shown as queued, and can be cancelled.
    page = operator_browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Halo!" in page and 'data-status="queued"' in page
    # A double submit of the same form sends once.
    operator_browser.submit(
        f"/sessions/{session_id}/chat/send",
        {"to": "0812-3456-789", "kind": "text", "text": "Halo!", "idempotency_key": "k1"},
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1


def test_send_a_file_and_a_location(operator_browser):
    session_id = _session(operator_browser)
    url = f"/sessions/{session_id}/chat/send"
    operator_browser.submit(
        url,
        {
            "to": "0812-3456-789",
            "kind": "file",
            "text": "caption",
            "file": (io.BytesIO(b"%PDF-1.4 hello"), "report.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    operator_browser.submit(
        url,
        {
            "to": "0812-3456-789",
            "kind": "location",
            "latitude": "-6.2",
            "longitude": "106.8",
            "name": "Kantor",
        },
    )
    rows = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.seq)).all()
    assert [r.kind for r in rows] == ["document", "location"]
    assert rows[0].payload["media"]["filename"] == "report.pdf"
    assert rows[1].payload["location"]["name"] == "Kantor"


def test_a_wrong_send_says_what_is_wrong(operator_browser):
    session_id = _session(operator_browser)
    page = f"/sessions/{session_id}/chat"
    answer = operator_browser.submit(
        f"{page}/send", {"to": "not a phone", "text": "x", "next": page}
    )
    assert "to:" in flashes(operator_browser.get(answer.headers["Location"]))
    answer = operator_browser.submit(
        f"{page}/send", {"to": "0812-3456-789", "kind": "file", "next": page}
    )
    assert "Choose a file" in flashes(operator_browser.get(answer.headers["Location"]))


def test_a_virtual_contact_speaks_and_the_message_appears(operator_browser, runtime):
    session_id = _session(operator_browser)
    from server import sessions
    from server.models import WaSession

    session = db.session.get(WaSession, session_id)
    sessions.start(session)
    wait_for(lambda: db.session.get(WaSession, session_id).status == "qr", what="a QR")
    operator_browser.submit(f"/sessions/{session_id}/scan", {"phone": "6281100000001"})
    wait_for(lambda: db.session.get(WaSession, session_id).status == "connected", what="connected")
    said = operator_browser.submit(
        f"/sessions/{session_id}/chat/say",
        {"from": "0812-3456-789", "name": "Budi", "text": "#request lampu mati"},
    )
    assert said.headers["Location"] == f"/sessions/{session_id}/chat?chat=0812-3456-789"
    stored = db.session.scalar(sa.select(Message))
    assert (stored.direction, stored.text, stored.sender_name) == (
        "in",
        "#request lampu mati",
        "Budi",
    )
    chat = operator_browser.get(said.headers["Location"]).get_data(as_text=True)
    assert "#request lampu mati" in chat and "Budi" in chat
    fragment = operator_browser.get(
        f"/sessions/{session_id}/chat?chat=0812-3456-789&partial=messages"
    ).get_data(as_text=True)
    assert "#request lampu mati" in fragment and "<html" not in fragment
    read = operator_browser.submit(
        f"/sessions/{session_id}/chat/read",
        {"chat": "628123456789@s.whatsapp.net", "next": f"/sessions/{session_id}/chat"},
    )
    assert "Marked read" in flashes(operator_browser.get(read.headers["Location"]))


def test_only_sandbox_sessions_have_virtual_contacts(operator_browser):
    answer = operator_browser.submit("/sessions", {"label": "Real", "transport": "neonize"})
    session_id = answer.headers["Location"].rsplit("/", 1)[-1]
    page = f"/sessions/{session_id}/chat"
    assert "speak as a contact" not in operator_browser.get(page).get_data(as_text=True)
    refused = operator_browser.submit(f"{page}/say", {"from": "0812", "text": "x", "next": page})
    assert "not a sandbox one" in flashes(operator_browser.get(refused.headers["Location"]))
