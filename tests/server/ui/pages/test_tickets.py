"""Helpdesk pages: the tickets list (filters, search, pages), a ticket with its timeline
and photos, assign / progress / status / notes, statistics, exports, print views, and
what field officers may see."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from openpyxl import load_workbook

from server.models import Ticket, db
from server.tickets import lifecycle, staff
from server.tickets.actors import Actor
from server.ui.pages import tickets as page_module
from tests.server.tickets.conftest import REPORTER, STRANGER, desk  # noqa: F401 - fixture
from tests.server.ui.conftest import flashes


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _report(desk, text, phone=REPORTER, **kwargs):  # noqa: F811
    return lifecycle.create(
        text, desk.actor(phone), reporter_phone=phone, session_id=desk.session.id, **kwargs
    )


@pytest.fixture
def manager(desk, browser_for):  # noqa: F811
    """The helpdesk's administrator (an operator) in the dashboard."""
    return browser_for(desk.admin)


@pytest.fixture
def tickets(desk):  # noqa: F811
    """Three tickets: one assigned to Siswanto, one new, one from a stranger."""
    lamp = _report(desk, "lampu kelas B201 mati")
    lifecycle.assign(lamp, staff.get(desk.tbo.id), Actor.system(), note="segera")
    door = _report(desk, "pintu lab rusak")
    guest = _report(desk, "atap bocor", phone=STRANGER, reporter_name="Tamu")
    return lamp.number, door.number, guest.number


def _numbers(page: str) -> list[str]:
    return re.findall(r'data-ticket="(\w+)"', page)


def test_the_list_filters_searches_and_pages(manager, tickets, monkeypatch):
    lamp, door, guest = tickets
    assert _numbers(_text(manager.get("/helpdesk"))) == [guest, door, lamp]  # newest first
    assert _numbers(_text(manager.get("/helpdesk?status=assigned"))) == [lamp]
    assert _numbers(_text(manager.get("/helpdesk?q=PINTU"))) == [door]
    assert _numbers(_text(manager.get(f"/helpdesk?reporter={STRANGER}"))) == [guest]
    assert _numbers(_text(manager.get("/helpdesk?status=open&q=&from=&to="))) == [guest, door, lamp]
    fragment = _text(manager.get("/helpdesk?partial=list&status=new"))
    assert "<html" not in fragment and _numbers(fragment) == [guest, door]
    bad = manager.get("/helpdesk?status=lost")
    assert bad.status_code == 422 and "Unknown status 'lost'" in _text(bad)
    monkeypatch.setattr(page_module, "PAGE", 2)
    first = _text(manager.get("/helpdesk"))
    assert _numbers(first) == [guest, door]
    older = re.search(r'href="(/helpdesk\?cursor=[^"]+)"', first).group(1)
    assert _numbers(_text(manager.get(older))) == [lamp]


def test_field_officers_see_only_their_assignments(desk, tickets, browser_for):  # noqa: F811
    lamp, door, _guest = tickets
    officer = browser_for(desk.tbo)
    assert _numbers(_text(officer.get("/helpdesk"))) == [lamp]
    page = _text(officer.get(f"/helpdesk/tickets/{lamp}"))
    assert "lampu kelas B201 mati" in page and "Assign to" not in page  # no tickets:assign
    assert officer.get(f"/helpdesk/tickets/{door}").status_code == 404
    assert officer.get(f"/helpdesk/tickets/{door}/print").status_code == 404
    assert (
        officer.submit(f"/helpdesk/tickets/{lamp}/assign", {"assignee": desk.tbo.id}).status_code
        == 403
    )
    overview = _text(officer.get("/"))
    assert 'data-stat="tickets-assigned"><a href="/helpdesk?status=assigned">1<' in overview


def test_a_ticket_with_its_timeline_and_photos(desk, manager, browser_for):  # noqa: F811
    photo = desk.message(photo=b"\xff\xd8 lampu")
    ticket = _report(desk, "lampu mati", photo=photo.id)
    page = _text(manager.get(f"/helpdesk/tickets/{ticket.number}"))
    assert "R Marta Dinata" in page and "PGW2402001" in page and "lampu mati" in page
    assert f'src="/helpdesk/tickets/{ticket.number}/photo"' in page
    assert 'data-event="created"' in page
    served = manager.get(f"/helpdesk/tickets/{ticket.number}/photo")
    assert served.status_code == 200 and served.data == b"\xff\xd8 lampu"
    assert served.mimetype == "image/jpeg"
    served.close()
    assert manager.get(f"/helpdesk/tickets/{ticket.number}/photo?event=999").status_code == 404
    assert (
        browser_for(desk.tbo).get(f"/helpdesk/tickets/{ticket.number}/photo").status_code == 404
    )  # not theirs
    assert manager.get("/helpdesk/tickets/BRT0000000").status_code == 404


def test_assign_with_a_note_add_progress_and_change_the_status(desk, manager):  # noqa: F811
    photo = desk.message(photo=b"\xff\xd8 bukti", text="foto lampu")
    ticket = _report(desk, "lampu mati")
    url = f"/helpdesk/tickets/{ticket.number}"
    page = _text(manager.get(url))
    assert "Siswanto (TBO)" in page and "Adrasha (TBO)" in page
    assigned = manager.submit(
        f"{url}/assign", {"assignee": desk.tbo.id, "note": "segera ke lokasi", "next": url}
    )
    assert assigned.status_code == 303
    shown = manager.get(url)
    assert f"Ticket {ticket.number} assigned to Siswanto." in flashes(shown)
    assert "segera ke lokasi" in _text(shown) and 'data-event="assigned"' in _text(shown)

    page = _text(manager.get(url))
    assert f'value="{photo.id}"' not in page  # the photo names no ticket yet
    db.session.expire_all()
    progressed = manager.submit(
        f"{url}/progress", {"note": "lampu dipesan", "photo_message_id": photo.id, "next": url}
    )
    assert "Progress recorded" in flashes(manager.get(progressed.headers["Location"]))
    event = db.session.get(Ticket, ticket.id).events[-1]
    assert (event.kind, event.note, event.photo_message_id) == (
        "progress",
        "lampu dipesan",
        photo.id,
    )
    assert f"photo?event={event.id}" in _text(manager.get(url))

    empty = manager.submit(f"{url}/progress", {"note": "", "next": url})
    assert "Write what was done" in flashes(manager.get(empty.headers["Location"]))
    started = manager.submit(f"{url}/status", {"status": "in_progress", "next": url})
    assert "is now in progress" in flashes(manager.get(started.headers["Location"]))
    finished = manager.submit(f"{url}/status", {"status": "done", "note": "beres", "next": url})
    assert "is now done" in flashes(manager.get(finished.headers["Location"]))
    refused = manager.submit(f"{url}/status", {"status": "in_progress", "next": url})
    assert "it can be started only when" in flashes(manager.get(refused.headers["Location"]))
    noted = manager.submit(f"{url}/notes", {"note": "dicek ulang besok", "next": url})
    assert "Note added" in flashes(manager.get(noted.headers["Location"]))
    nobody = manager.submit(f"{url}/assign", {"next": url})
    assert "assignee" in flashes(manager.get(nobody.headers["Location"]))
    db.session.expire_all()
    row = db.session.get(Ticket, ticket.id)
    assert row.status == "done" and row.duration_seconds is not None
    assert "Finished" in _text(manager.get(url))


def test_statistics_exports_and_print_views(manager, tickets):
    lamp, door, guest = tickets
    stats = _text(manager.get("/helpdesk/stats"))
    assert 'data-stat="total">3<' in stats
    assert len(re.findall(r'<g class="day"', stats)) == 30
    assert re.search(r'data-status="new">\s*<text[^>]*>new</text>\s*<rect[^>]*width="250', stats)
    assert "Siswanto" in stats  # by assignee
    assert manager.get("/helpdesk/stats?from=2024-01-01&to=2026-01-01").status_code == 422

    xlsx = manager.get("/helpdesk/export?format=xlsx&status=new")
    assert xlsx.headers["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert sorted(row[0].value for row in sheet.iter_rows(min_row=2)) == sorted([door, guest])
    rows = list(
        csv.reader(io.StringIO(manager.get("/helpdesk/export?format=csv").data.decode("utf-8-sig")))
    )
    assert rows[0][0] == "Number" and len(rows) == 4
    assert manager.get("/helpdesk/export?format=pdf").status_code == 422

    printed = _text(manager.get("/helpdesk/print?status=new"))
    assert door in printed and guest in printed and lamp not in printed
    assert 'class="top"' not in printed and "data-print" in printed
    one = _text(manager.get(f"/helpdesk/tickets/{lamp}/print"))
    assert "Ticket " + lamp in one and "segera" in one and "Reporter" in one


def test_the_overview_card_counts_open_tickets(manager, tickets):
    page = _text(manager.get("/"))
    assert 'data-stat="tickets-new"><a href="/helpdesk?status=new">2<' in page
    assert 'data-stat="tickets-assigned"><a href="/helpdesk?status=assigned">1<' in page
