"""The people directory pages: search, add, change, remove, and import with a report."""

from __future__ import annotations

import html
import io

import sqlalchemy as sa

from server.models import Person, db
from tests.server.ui.conftest import flashes


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _person(person_id: str) -> Person | None:
    db.session.expire_all()
    return db.session.get(Person, person_id)


def test_add_search_change_and_remove_a_person(operator_browser):
    added = operator_browser.submit(
        "/helpdesk/people",
        {
            "id": "pgw2402001",
            "name": "R Marta Dinata",
            "phone": "0812-3456-7890",
            "department": "Teknik",
            "unit": "TIF IT",
            "email": "",
        },
    )
    assert added.status_code == 303
    assert added.headers["Location"] == "/helpdesk/people/PGW2402001"
    assert "added as PGW2402001" in flashes(operator_browser.get(added.headers["Location"]))
    person = _person("PGW2402001")
    assert (person.phone, person.email) == ("6281234567890", None)

    auto = operator_browser.submit("/helpdesk/people", {"name": "Budi", "phone": "0813 1111 2222"})
    budi = auto.headers["Location"].rsplit("/", 1)[-1]
    assert budi.startswith("PGW") and budi != "PGW2402001"
    listing = _text(operator_browser.get("/helpdesk/people?q=marta"))
    assert 'data-person="PGW2402001"' in listing and f'data-person="{budi}"' not in listing
    assert f'data-person="{budi}"' in _text(operator_browser.get("/helpdesk/people?q=1111"))

    taken = operator_browser.submit(
        "/helpdesk/people",
        {"name": "Other", "phone": "+62 812 3456 7890", "next": "/helpdesk/people"},
    )
    assert "already belongs to R Marta Dinata" in flashes(
        operator_browser.get(taken.headers["Location"])
    )
    missing = operator_browser.submit("/helpdesk/people", {"name": "", "next": "/helpdesk/people"})
    assert "phone" in flashes(operator_browser.get(missing.headers["Location"]))

    url = "/helpdesk/people/PGW2402001"
    operator_browser.submit(
        url,
        {
            "name": "R. Marta Dinata",
            "phone": "0812-3456-7890",
            "email": "marta@kampus.ac.id",
            "department": "Teknik",
            "unit": "",
            "status": "inactive",
            "notes": "",
            "next": url,
        },
    )
    person = _person("PGW2402001")
    assert (person.name, person.email, person.unit, person.status) == (
        "R. Marta Dinata",
        "marta@kampus.ac.id",
        "",
        "inactive",
    )
    bad = operator_browser.submit(
        url, {"name": "x", "phone": "x", "email": "nope", "status": "active", "next": url}
    )
    assert "email" in flashes(operator_browser.get(bad.headers["Location"]))

    removed = operator_browser.submit(f"{url}/delete")
    assert removed.headers["Location"] == "/helpdesk/people"
    assert _person("PGW2402001") is None
    assert operator_browser.get(url).status_code == 404


def test_import_a_file_with_a_report_of_the_rows_that_failed(operator_browser):
    data = (
        b"id_pegawai;nama;telepon;Jurusan/Bagian;status\n"
        b"PGW2402001;Budi;81234567890;Sarpras/Humas;Aktif\n"
        b"PGW2402002;Ani;;Teknik/IT;Aktif\n"
        b"PGW2402003;Citra;0813-2222-3333;Teknik/IT;Entah\n"
    )
    checked = operator_browser.submit(
        "/helpdesk/people/import",
        {"file": (io.BytesIO(data), "pegawai.csv"), "dry_run": "on"},
        content_type="multipart/form-data",
    )
    page = _text(checked)
    assert checked.status_code == 200 and "checked only" in page
    assert 'data-stat="created">1<' in page and 'data-stat="failed">2<' in page
    assert "Needed for a new person." in page and "Aktif / Tidak Aktif" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Person)) == 0

    imported = operator_browser.submit(
        "/helpdesk/people/import",
        {"file": (io.BytesIO(data), "pegawai.csv")},
        content_type="multipart/form-data",
    )
    assert 'data-stat="created">1<' in _text(imported)
    budi = _person("PGW2402001")
    assert (budi.phone, budi.department, budi.unit) == ("6281234567890", "Sarpras", "Humas")

    nothing = operator_browser.submit("/helpdesk/people/import", {"next": "/helpdesk/people"})
    assert "Choose a CSV or XLSX file" in flashes(operator_browser.get(nothing.headers["Location"]))
    unreadable = operator_browser.submit(
        "/helpdesk/people/import",
        {"file": (io.BytesIO(b"\xd0\xcf\x11\xe0old"), "old.xls"), "next": "/helpdesk/people"},
        content_type="multipart/form-data",
    )
    assert ".xls" in flashes(operator_browser.get(unreadable.headers["Location"]))


def test_people_pages_need_people_manage(browser_for, make_user):
    field = browser_for(make_user("field"))
    assert field.get("/helpdesk/people").status_code == 403
    page = _text(field.get("/helpdesk"))
    assert "/helpdesk/people" not in page and "/helpdesk/staff" not in page
