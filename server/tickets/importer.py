"""Importing the people directory from CSV or XLSX.

The first row names the columns, in English or as the book's tables do (``id_pegawai``,
``nama``, ``telepon``, ``jurusan``, ``bagian``, ``keterangan``); a combined
``Jurusan/Bagian`` column is split at the slash. Rows are upserted by id; a row without
an id updates the person with its phone, or becomes a new person with a generated id.
Every row is checked first; the good ones are saved and each bad one is reported with
its row number and what is wrong (``dry_run`` checks without saving). A phone that lost
its leading 0 in a spreadsheet (812…) gets it back; foreign numbers need their +.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from datetime import date, datetime
from typing import Any

import phonenumbers

from server.errors import KabarError, ValidationFailed
from server.models import Person, db
from server.tickets import people

MAX_ROWS = 10_000
MAX_BYTES = 10 * 1024 * 1024
HEADERS = {
    "id": "id",
    "id_pegawai": "id",
    "idpgw": "id",
    "person_id": "id",
    "nik": "id",
    "name": "name",
    "nama": "name",
    "nama_pegawai": "name",
    "phone": "phone",
    "telepon": "phone",
    "telp": "phone",
    "no_hp": "phone",
    "hp": "phone",
    "whatsapp": "phone",
    "wa": "phone",
    "no_telepon": "phone",
    "email": "email",
    "department": "department",
    "jurusan": "department",
    "unit": "unit",
    "bagian": "unit",
    "jurusan/bagian": "department/unit",
    "department/unit": "department/unit",
    "status": "status",
    "notes": "notes",
    "keterangan": "notes",
    "catatan": "notes",
}


class UnreadableFile(KabarError):
    status = 422
    code = "unreadable_file"


def _header(name: Any) -> str:
    return re.sub(r"[\s.]+", "_", str(name or "").strip().lower())


def _text(value: Any) -> str:
    """A cell as text: 81234567890.0 (how Excel keeps a long number) as 81234567890."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def read(data: bytes, filename: str = "") -> list[list[str]]:
    """The file's rows (header first) as text, CSV or XLSX by their content."""
    if len(data) > MAX_BYTES:
        raise UnreadableFile(f"The file is over {MAX_BYTES // (1024 * 1024)} MiB; split it.")
    if data.startswith(b"PK\x03\x04"):
        return _xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0") or filename.lower().endswith(".xls"):
        raise UnreadableFile("Old Excel files (.xls) cannot be read; save it as .xlsx or .csv.")
    return _csv(data)


def _csv(data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise UnreadableFile("The file is neither CSV nor XLSX text.")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]


def _xlsx(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():  # openpyxl warns about styles it cannot read
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # a damaged zip or sheet can fail in many ways
        raise UnreadableFile(f"The XLSX file cannot be read: {exc}.") from None
    try:
        sheet = book.worksheets[0]
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append([_text(value) for value in row])
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    finally:
        book.close()


def _phone_cell(text: str) -> str:
    """Spreadsheets drop a number's leading 0 (0812… becomes 812…): digits that do not
    start with 0 or with the region's country code get the 0 back. Write a foreign number
    with its + to keep it foreign."""
    digits = text.strip()
    if not digits.isdigit() or digits.startswith("0"):
        return text
    code = str(phonenumbers.country_code_for_region(people.settings()["PHONE_REGION"]))
    return digits if digits.startswith(code) else "0" + digits


def _records(rows: list[list[str]]) -> list[tuple[int, dict[str, str]]]:
    """(row number, values by field) for each non-empty data row."""
    if not rows:
        raise UnreadableFile("The file is empty; its first row must name the columns.")
    fields = [HEADERS.get(_header(name)) for name in rows[0]]
    if "name" not in fields and "phone" not in fields and "id" not in fields:
        raise UnreadableFile(
            "The first row must name the columns: id, name, phone, email, department, unit, "
            "status, notes (or id_pegawai, nama, telepon, jurusan, bagian, keterangan)."
        )
    if len(rows) - 1 > MAX_ROWS:
        raise UnreadableFile(f"The file has over {MAX_ROWS} rows; split it.")
    records = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values: dict[str, str] = {}
        for field, cell in zip(fields, row, strict=False):
            if field == "department/unit":
                department, _, unit = cell.partition("/")
                values["department"], values["unit"] = department.strip(), unit.strip()
            elif field == "phone":
                values["phone"] = _phone_cell(cell)
            elif field:
                values[field] = cell.strip()
        records.append((number, values))
    return records


def _plan(
    number: int, values: dict[str, str], seen_ids: dict[str, int], seen_phones: dict[str, int]
) -> tuple[Person | None, dict[str, Any]]:
    """The person this row updates (None: a new one) and its cleaned values."""
    ident = people.person_id(values["id"]) if values.get("id") else None
    fields = {key: value for key, value in values.items() if key != "id" and value != ""}
    cleaned = people.clean(fields)
    person = db.session.get(Person, ident) if ident else None
    if ident is None and cleaned.get("phone"):
        person = people.find_by_phone(cleaned["phone"])
    if person is None:
        missing = [key for key in ("name", "phone") if not cleaned.get(key)]
        if missing:
            raise ValidationFailed(errors={key: ["Needed for a new person."] for key in missing})
    key = ident or (person.id if person else None)
    if key and key in seen_ids:
        raise ValidationFailed(errors={"id": [f"Row {seen_ids[key]} has the same person."]})
    phone = cleaned.get("phone")
    if phone:
        if phone in seen_phones:
            raise ValidationFailed(
                errors={"phone": [f"Row {seen_phones[phone]} has the same phone."]}
            )
        owner = people.find_by_phone(phone)
        if owner is not None and owner.id != key:
            raise ValidationFailed(
                errors={"phone": [f"{phone} already belongs to {owner.name} ({owner.id})."]}
            )
        seen_phones[phone] = number
    if key:
        seen_ids[key] = number
    return person, {**cleaned, "id": ident}


def run(data: bytes, filename: str = "", *, dry_run: bool = False) -> dict[str, Any]:
    """Import the file; answer what was (or, with ``dry_run``, would be) done."""
    records = _records(read(data, filename))
    seen_ids: dict[str, int] = {}
    seen_phones: dict[str, int] = {}
    plans, errors = [], []
    for number, values in records:
        try:
            plans.append(_plan(number, values, seen_ids, seen_phones))
        except KabarError as exc:
            errors.append(
                {
                    "row": number,
                    "id": values.get("id") or None,
                    "errors": exc.errors or {"row": [exc.message]},
                }
            )
    created = updated = 0
    with db.session.no_autoflush:
        for person, values in plans:
            ident = values.pop("id")
            if person is None:
                people.create(id=ident, commit=False, **values)
                created += 1
            else:
                people.update(person, commit=False, **values)
                updated += 1
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    return {
        "rows": len(records),
        "created": created,
        "updated": updated,
        "failed": len(errors),
        "errors": errors,
        "dry_run": dry_run,
    }
