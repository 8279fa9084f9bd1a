"""/api/v1/tickets: list and filters, detail, steps, statistics, exports, photos."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from server.tickets import lifecycle, staff
from server.tickets.actors import Actor
from tests.server.tickets.conftest import (
    REPORTER,
    STRANGER,
    TBO_PHONE,
    desk,  # noqa: F401 - the fixture
)

URL = "/api/v1/tickets"


@pytest.fixture
def headers(desk, login):  # noqa: F811
    """An operator (manages the helpdesk) and the field officer Siswanto."""
    return {"operator": login(desk.admin), "field": login(desk.tbo)}


def _report(desk, text: str, phone: str = REPORTER, **kwargs):  # noqa: F811
    return lifecycle.create(
        text, desk.actor(phone), reporter_phone=phone, session_id=desk.session.id, **kwargs
    )


def _at(monkeypatch, *args) -> None:
    monkeypatch.setattr(lifecycle, "utcnow", lambda: datetime(*args, tzinfo=UTC))


@pytest.fixture
def story(desk, monkeypatch):  # noqa: F811
    """Four tickets over three days: one confirmed (Siswanto, 2 h), one in progress
    (Siswanto), one assigned to Adrasha, one new from a stranger."""
    system = Actor.system()
    _at(monkeypatch, 2024, 9, 16, 1, 0)
    confirmed = _report(desk, "pagar tidak bisa ditutup")
    lifecycle.assign(confirmed, staff.get(desk.tbo.id), system)
    _at(monkeypatch, 2024, 9, 16, 3, 0)
    lifecycle.finish(confirmed, system)
    lifecycle.confirm(confirmed, system)
    _at(monkeypatch, 2024, 9, 17, 1, 0)
    working = _report(desk, "lampu kelas mati")
    lifecycle.assign(working, staff.get(desk.tbo.id), system)
    lifecycle.start(working, system)
    other = _report(desk, "atap bocor di ruang km 1")
    lifecycle.assign(other, staff.get(desk.tbo2.id), system)
    _at(monkeypatch, 2024, 9, 18, 1, 0)
    new = _report(desk, '=HYPERLINK("http://x")', phone=STRANGER, reporter_name="Tamu")
    return [confirmed.number, working.number, other.number, new.number]


def _numbers(client, headers, query: str = "") -> list[str]:
    response = client.get(f"{URL}{query}", headers=headers)
    assert response.status_code == 200, response.json
    return [item["number"] for item in response.json["items"]]


def test_list_newest_first_with_filters_and_pages(client, headers, story, desk):  # noqa: F811
    op = headers["operator"]
    assert _numbers(client, op) == story[::-1]
    assert _numbers(client, op, "?status=open") == story[:0:-1]
    assert _numbers(client, op, "?status=confirmed,new") == [story[3], story[0]]
    assert _numbers(client, op, "?from=2024-09-17&to=2024-09-17") == [story[2], story[1]]
    assert _numbers(client, op, f"?assignee={desk.tbo.id}") == [story[1], story[0]]
    assert _numbers(client, op, "?reporter=0812-3456-7890") == story[2::-1]
    assert _numbers(client, op, "?reporter=pgw2402001") == story[2::-1]
    assert _numbers(client, op, "?q=BOCOR") == [story[2]]
    first = client.get(f"{URL}?limit=3", headers=op).json
    rest = client.get(f"{URL}?limit=3&cursor={first['next_cursor']}", headers=op).json
    assert [t["number"] for t in first["items"] + rest["items"]] == story[::-1]
    assert rest["next_cursor"] is None
    bad = client.get(f"{URL}?status=closed", headers=op)
    assert bad.status_code == 422 and "closed" in str(bad.json["errors"])


def test_field_officers_see_only_their_assignments(client, headers, story):
    field = headers["field"]
    assert _numbers(client, field) == [story[1], story[0]]
    assert client.get(f"{URL}/{story[1]}", headers=field).status_code == 200
    hidden = client.get(f"{URL}/{story[2]}", headers=field)
    assert (hidden.status_code, hidden.json["code"]) == (404, "ticket_not_found")
    assert client.get(f"{URL}/stats", headers=field).json["total"] == 2
    export = client.get(f"{URL}/export?format=csv", headers=field)
    assert len(list(csv.reader(io.StringIO(export.get_data(as_text=True))))) == 3
    refused = client.post(f"{URL}/{story[1]}/progress", headers=field, json={"note": "x"})
    assert refused.status_code == 403


def test_detail_has_the_story_and_the_messages_that_name_it(client, headers, story, desk):  # noqa: F811
    desk.message(text=f"cek {story[1].lower()}")
    desk.message(text="halo")
    detail = client.get(f"{URL}/{story[1].lower()}", headers=headers["operator"]).json
    assert detail["number"] == story[1] and detail["status"] == "in_progress"
    assert [e["kind"] for e in detail["events"]] == ["created", "assigned", "started"]
    assert detail["events"][1]["actor"] == {
        "kind": "system",
        "name": "workflow",
        "phone": None,
        "user_id": None,
    }
    assert detail["assignments"][0]["assignee"] == {"user_id": desk.tbo.id, "name": "Siswanto"}
    assert detail["assignee"]["phone"] == TBO_PHONE
    assert [m["text"] for m in detail["messages"]] == [f"cek {story[1].lower()}"]
    missing = client.get(f"{URL}/BRT0000001", headers=headers["operator"])
    assert (missing.status_code, missing.json["code"]) == (404, "ticket_not_found")


def test_a_manager_works_a_ticket_through_the_api(client, login, desk):  # noqa: F811
    op = login(desk.owner)  # an operator, owner of the helpdesk's session
    created = client.post(
        URL,
        headers=op,
        json={
            "text": "kunci ruang dosen hilang",
            "reporter_phone": "+62 812 3456 7890",
            "session_id": desk.session.id,
        },
    )
    assert created.status_code == 201, created.json
    number = created.json["number"]
    assert created.json["reporter"]["person_id"] == "PGW2402001"
    step = client.post(
        f"{URL}/{number}/assign", headers=op, json={"assignee": desk.tbo.id, "note": "ganti kunci"}
    )
    assert step.status_code == 200 and step.json["assignee"]["name"] == "Siswanto"
    nobody = client.post(f"{URL}/{number}/assign", headers=op, json={"assignee": desk.owner.id})
    assert (nobody.status_code, nobody.json["code"]) == (404, "staff_not_found")
    photo = desk.message(sender=TBO_PHONE, photo=b"kunci baru")
    step = client.post(
        f"{URL}/{number}/progress",
        headers=op,
        json={"note": "kunci dipesan", "photo_message_id": photo.id},
    )
    assert step.status_code == 200, step.json
    for status in ("in_progress", "pending", "done"):
        step = client.post(f"{URL}/{number}/status", headers=op, json={"status": status})
        assert (step.status_code, step.json["status"]) == (200, status)
    wrong = client.post(f"{URL}/{number}/status", headers=op, json={"status": "pending"})
    assert (wrong.status_code, wrong.json["code"]) == (409, "invalid_transition")
    assert "it can be put on hold only when" in wrong.json["message"]
    noted = client.post(f"{URL}/{number}/notes", headers=op, json={"note": "cek ulang"})
    assert noted.status_code == 200
    detail = client.get(f"{URL}/{number}", headers=op).json
    assert [e["kind"] for e in detail["events"]] == [
        "created",
        "assigned",
        "progress",
        "started",
        "status",
        "finished",
        "note",
    ]
    assert detail["events"][0]["actor"] == {
        "kind": "user",
        "name": "helpdesk",
        "phone": None,
        "user_id": desk.owner.id,
    }
    assert detail["events"][2]["photo"]["url"].endswith(f"?event={detail['events'][2]['id']}")
    assert len(detail["messages"]) == 1  # the photo message


def test_create_needs_a_reporter_and_a_visible_session(client, headers, desk, login):  # noqa: F811
    op = headers["operator"]
    none = client.post(URL, headers=op, json={"text": "x"})
    assert none.status_code == 422 and "reporter_phone" in none.json["errors"]["json"]
    bad = client.post(URL, headers=op, json={"text": "x", "reporter_phone": "halo"})
    assert bad.status_code == 422 and "reporter_phone" in bad.json["errors"]
    person = client.post(URL, headers=op, json={"text": "x", "person_id": "PGW9"})
    assert person.status_code == 422 and "person_id" in person.json["errors"]
    theirs = client.post(
        URL,
        headers=op,
        json={"text": "x", "reporter_phone": REPORTER, "session_id": desk.session.id},
    )
    assert (theirs.status_code, theirs.json["code"]) == (404, "session_not_found")
    mine = client.post(
        URL,
        headers=login(desk.owner),
        json={"text": "x", "reporter_phone": REPORTER, "session_id": desk.session.id},
    )
    assert mine.status_code == 201 and mine.json["session_id"] == desk.session.id


def test_statistics(client, headers, story, desk):  # noqa: F811
    stats = client.get(
        f"{URL}/stats?from=2024-09-15&to=2024-09-18", headers=headers["operator"]
    ).json
    assert stats["total"] == 4
    assert stats["by_status"] == {
        "new": 1,
        "assigned": 1,
        "in_progress": 1,
        "pending": 0,
        "done": 0,
        "confirmed": 1,
    }
    assert stats["mean_seconds_to_finish"] == 7200.0
    assert stats["by_assignee"] == [
        {
            "user_id": desk.tbo.id,
            "name": "Siswanto",
            "total": 2,
            "open": 1,
            "finished": 1,
            "mean_seconds_to_finish": 7200.0,
        },
        {
            "user_id": desk.tbo2.id,
            "name": "Adrasha",
            "total": 1,
            "open": 1,
            "finished": 0,
            "mean_seconds_to_finish": None,
        },
    ]
    assert stats["by_day"] == [
        {"date": "2024-09-15", "created": 0, "finished": 0},
        {"date": "2024-09-16", "created": 1, "finished": 1},
        {"date": "2024-09-17", "created": 2, "finished": 0},
        {"date": "2024-09-18", "created": 1, "finished": 0},
    ]
    only_done = client.get(
        f"{URL}/stats?status=confirmed&from=2024-09-16&to=2024-09-16", headers=headers["operator"]
    ).json
    assert only_done["total"] == 1
    too_long = client.get(f"{URL}/stats?from=2020-01-01&to=2024-09-18", headers=headers["operator"])
    assert too_long.status_code == 422


def test_xlsx_export_opens_in_openpyxl_with_the_rows(client, headers, story):
    response = client.get(f"{URL}/export?status=open", headers=headers["operator"])
    assert response.status_code == 200
    assert response.mimetype == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'attachment; filename="tickets-' in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    rows = list(book["Tickets"].iter_rows(values_only=True))
    assert rows[0][:4] == ("Number", "Reported (Asia/Jakarta)", "Category", "Status")
    assert [row[0] for row in rows[1:]] == story[1:]
    working = rows[1]
    assert working[1] == datetime(2024, 9, 17, 8, 0)  # 01:00 UTC is 08:00 in Jakarta
    assert working[3:6] == ("in_progress", "R Marta Dinata", REPORTER)
    assert working[10] == "Siswanto"
    stranger = rows[3]
    assert stranger[9] == '=HYPERLINK("http://x")'  # text, not a formula
    assert book["Tickets"].cell(row=4, column=10).data_type == "s"


def test_csv_export_has_the_same_rows_and_defuses_formulas(client, headers, story):
    response = client.get(f"{URL}/export?format=csv", headers=headers["operator"])
    assert response.mimetype == "text/csv"
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert [row[0] for row in rows[1:]] == story
    assert rows[1][1] == "2024-09-16 08:00:00" and rows[1][15] == "2.0"
    assert rows[4][9] == '\'=HYPERLINK("http://x")'


def test_photos_are_served_from_the_media_store(client, headers, desk):  # noqa: F811
    photo = desk.message(photo=b"\xff\xd8jpeg")
    ticket = lifecycle.create(
        "lampu",
        desk.actor(REPORTER),
        reporter_phone=REPORTER,
        photo=photo.id,
        session_id=desk.session.id,
    )
    response = client.get(f"{URL}/{ticket.number}/photo", headers=headers["operator"])
    assert response.status_code == 200 and response.data == b"\xff\xd8jpeg"
    assert response.mimetype == "image/jpeg"
    response.close()
    none = client.get(f"{URL}/{ticket.number}/photo?event=999", headers=headers["operator"])
    assert (none.status_code, none.json["code"]) == (404, "photo_not_found")
    hidden = client.get(f"{URL}/{ticket.number}/photo", headers=headers["field"])
    assert hidden.status_code == 404
