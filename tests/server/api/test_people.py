"""/api/v1/people: the directory, and importing it from CSV or XLSX."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

URL = "/api/v1/people"


@pytest.fixture
def op(make_user, login):
    return login(make_user("operator"))


def _import(client, headers, data: bytes, name: str, query: str = ""):
    return client.post(
        f"{URL}/import{query}",
        headers=headers,
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_add_change_find_and_remove_a_person(client, op):
    created = client.post(
        URL,
        headers=op,
        json={
            "id": "pgw2402001",
            "name": "R Marta Dinata",
            "phone": "0812-3456-7890",
            "department": "TIF",
            "unit": "IT",
            "status": "Aktif",
        },
    )
    assert created.status_code == 201, created.json
    assert (created.json["id"], created.json["phone"], created.json["status"]) == (
        "PGW2402001",
        "6281234567890",
        "active",
    )
    again = client.post(
        URL, headers=op, json={"id": "PGW2402001", "name": "X", "phone": "0812-0000-0000"}
    )
    assert (again.status_code, again.json["code"]) == (409, "person_exists")
    same_phone = client.post(URL, headers=op, json={"name": "Y", "phone": "+62 812 3456 7890"})
    assert (same_phone.status_code, same_phone.json["code"]) == (409, "phone_taken")
    assert "R Marta Dinata (PGW2402001)" in same_phone.json["message"]
    generated = client.post(URL, headers=op, json={"name": "She Min Ah", "phone": "085825335908"})
    assert generated.json["id"].startswith("PGW") and len(generated.json["id"]) == 10
    changed = client.patch(
        f"{URL}/pgw2402001", headers=op, json={"status": "tidak aktif", "unit": "Humas"}
    )
    assert (changed.json["status"], changed.json["unit"]) == ("inactive", "Humas")
    bad = client.patch(f"{URL}/PGW2402001", headers=op, json={"phone": "halo"})
    assert bad.status_code == 422 and "phone" in bad.json["errors"]
    found = client.get(f"{URL}?q=marta", headers=op).json["items"]
    assert [p["id"] for p in found] == ["PGW2402001"]
    assert [p["id"] for p in client.get(f"{URL}?q=5335908", headers=op).json["items"]] == [
        generated.json["id"]
    ]
    assert len(client.get(f"{URL}?status=active", headers=op).json["items"]) == 1
    assert client.delete(f"{URL}/PGW2402001", headers=op).status_code == 204
    gone = client.get(f"{URL}/PGW2402001", headers=op)
    assert (gone.status_code, gone.json["code"]) == (404, "person_not_found")


def test_import_csv_with_the_books_headers_and_per_row_errors(client, op):
    client.post(
        URL,
        headers=op,
        json={"id": "PGW2402003", "name": "Febriansyah lama", "phone": "081294403603"},
    )
    data = (
        b"IDPGW;Nama Pegawai;Telepon;Jurusan/Bagian;Status;Keterangan\n"
        b"PGW2402003;Febriansyah;081294403603;Sarpras/Humas;Aktif;\n"
        b"PGW2402002;She Min Ah;6285825335908;Rektorat/SDM;Aktif;kepala\n"
        b";;;;;\n"
        b"PGW2402009;Tanpa Telepon;;TIF/IT;Aktif;\n"
        b"PGW2402010;Nomor Ganda;085825335908;TIF/IT;Aktif;\n"
        b"PGW2402011;Status Aneh;0811111111;TIF/IT;cuti;\n"
        b";Tanpa Id;08122223333;FT/Elektro;Aktif;\n"
    )
    report = _import(client, op, data, "pegawai.csv")
    assert report.status_code == 200, report.json
    assert {k: report.json[k] for k in ("rows", "created", "updated", "failed")} == {
        "rows": 6,
        "created": 2,
        "updated": 1,
        "failed": 3,
    }
    assert [(e["row"], sorted(e["errors"])) for e in report.json["errors"]] == [
        (5, ["phone"]),
        (6, ["phone"]),
        (7, ["status"]),
    ]
    assert "Row 3 has the same phone." in report.json["errors"][1]["errors"]["phone"]
    updated = client.get(f"{URL}/PGW2402003", headers=op).json
    assert (updated["name"], updated["department"], updated["unit"]) == (
        "Febriansyah",
        "Sarpras",
        "Humas",
    )
    assert client.get(f"{URL}/PGW2402002", headers=op).json["notes"] == "kepala"
    generated = client.get(f"{URL}?q=tanpa id", headers=op).json["items"]
    assert generated[0]["phone"] == "628122223333"
    again = _import(client, op, data, "pegawai.csv")  # upserts: nothing new
    assert (again.json["created"], again.json["updated"]) == (0, 3)


def test_import_xlsx_and_a_dry_run(client, op):
    book = Workbook()
    sheet = book.active
    sheet.append(["id", "name", "phone", "email", "department", "unit", "status", "notes"])
    # Excel keeps 0821-1147-0069 as the number 82111470069: the import puts the 0 back.
    sheet.append(
        [
            "PGW2402001",
            "R Marta Dinata",
            82111470069,
            "marta@istn.ac.id",
            "TIF",
            "IT",
            "active",
            None,
        ]
    )
    sheet.append(["PGW2402002", None, "0813 1111 2222", None, None, None, None, None])
    sheet.append([None, None, None, None, None, None, None, None])
    out = io.BytesIO()
    book.save(out)
    dry = _import(client, op, out.getvalue(), "pegawai.xlsx", "?dry_run=true")
    assert (dry.json["created"], dry.json["failed"], dry.json["dry_run"]) == (1, 1, True)
    assert dry.json["errors"][0] == {
        "row": 3,
        "id": "PGW2402002",
        "errors": {"name": ["Needed for a new person."]},
    }
    assert client.get(f"{URL}/PGW2402001", headers=op).status_code == 404
    real = _import(client, op, out.getvalue(), "pegawai.xlsx")
    assert real.json["created"] == 1
    person = client.get(f"{URL}/PGW2402001", headers=op).json
    assert (person["phone"], person["email"]) == ("6282111470069", "marta@istn.ac.id")


def test_files_that_cannot_be_imported(client, op):
    assert _import(client, op, b"", "kosong.csv").json["code"] == "unreadable_file"
    headerless = _import(client, op, b"a,b\n1,2\n", "x.csv")
    assert headerless.status_code == 422 and "first row" in headerless.json["message"]
    old = _import(client, op, b"\xd0\xcf\x11\xe0rest", "lama.xls")
    assert "save it as .xlsx" in old.json["message"]
    broken = _import(client, op, b"PK\x03\x04broken", "rusak.xlsx")
    assert broken.json["code"] == "unreadable_file"
    missing = client.post(f"{URL}/import", headers=op, data={}, content_type="multipart/form-data")
    assert missing.status_code == 422 and "file" in missing.json["errors"]


def test_field_officers_cannot_manage_people(client, make_user, login):
    field = login(make_user("field"))
    assert client.get(URL, headers=field).status_code == 403


def test_generated_ids_skip_ones_typed_by_hand(client, op, app):
    from server.models import utcnow
    from server.tickets import numbering

    month = numbering.period(utcnow(), app.config["KABAR"]["HELPDESK_TIMEZONE"])
    client.post(
        URL, headers=op, json={"id": f"PGW{month}001", "name": "A", "phone": "0811-0000-0001"}
    )
    made = client.post(URL, headers=op, json={"name": "B", "phone": "0811-0000-0002"})
    assert made.status_code == 201 and made.json["id"] == f"PGW{month}002"
    bad = client.post(
        URL, headers=op, json={"name": "C", "phone": "0811-0000-0003", "email": "not-an-email"}
    )
    assert bad.status_code == 422 and "email" in bad.json["errors"]["json"]
