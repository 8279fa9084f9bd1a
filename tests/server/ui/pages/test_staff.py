"""Helpdesk staff pages: make a user staff, change their profile, remove them."""

from __future__ import annotations

import html

from server.models import StaffProfile, db
from tests.server.ui.conftest import flashes


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _profile(user_id: int) -> StaffProfile | None:
    db.session.expire_all()
    return db.session.get(StaffProfile, user_id)


def test_make_a_user_staff_change_and_remove_them(operator_browser, make_user):
    officer = make_user("field", username="siswanto", display_name="Siswanto")
    added = operator_browser.submit(
        "/helpdesk/staff",
        {
            "username": "Siswanto",
            "phone": "0821-2460-3757",
            "level": "TBO",
            "status": "active",
            "notes": "Teknisi listrik",
        },
    )
    assert added.headers["Location"] == "/helpdesk/staff"
    page = operator_browser.get("/helpdesk/staff")
    assert "Siswanto is helpdesk staff (TBO)." in flashes(page)
    shown = _text(page)
    assert 'data-staff="siswanto"' in shown and "6282124603757" in shown
    assert "Teknisi listrik" in shown
    assert (_profile(officer.id).level, _profile(officer.id).phone) == ("tbo", "6282124603757")

    url = f"/helpdesk/staff/{officer.id}"
    operator_browser.submit(
        url,
        {
            "phone": "0821-2460-3757",
            "level": "staff",
            "status": "inactive",
            "next": "/helpdesk/staff",
        },
    )
    assert (_profile(officer.id).level, _profile(officer.id).status) == ("staff", "inactive")
    assert 'data-staff="siswanto"' not in _text(operator_browser.get("/helpdesk/staff?level=tbo"))

    unknown = operator_browser.submit(
        "/helpdesk/staff",
        {"username": "nobody", "phone": "0821", "level": "tbo", "next": "/helpdesk/staff"},
    )
    assert "No user named nobody" in flashes(operator_browser.get(unknown.headers["Location"]))
    other = make_user("field", username="adrasha")
    taken = operator_browser.submit(
        "/helpdesk/staff",
        {
            "username": "adrasha",
            "phone": "0821-2460-3757",
            "level": "tbo",
            "next": "/helpdesk/staff",
        },
    )
    assert "already belongs to staff member siswanto" in flashes(
        operator_browser.get(taken.headers["Location"])
    )
    wrong = operator_browser.submit(
        "/helpdesk/staff",
        {
            "username": "adrasha",
            "phone": "0821-9999-0000",
            "level": "boss",
            "next": "/helpdesk/staff",
        },
    )
    assert "level" in flashes(operator_browser.get(wrong.headers["Location"]))
    assert _profile(other.id) is None

    removed = operator_browser.submit(f"{url}/delete")
    assert removed.headers["Location"] == "/helpdesk/staff"
    assert _profile(officer.id) is None
    assert operator_browser.submit(f"{url}/delete").status_code == 404
