"""The people directory (who may report): create, change, find by phone, delete."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app

from server.errors import Conflict, ValidationFailed
from server.models import PERSON_STATUSES, Person, db, utcnow
from server.tickets import numbering
from server.tickets.errors import PersonNotFound
from server.whatsapp.jids import InvalidPhone, normalise_phone

PERSON_ID = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,31}$")
ID_PREFIX = "PGW"
"""Ids Kabar makes when none is given: PGW + YYMM + sequence (as in the book)."""
FIELDS = ("name", "phone", "email", "department", "unit", "status", "notes")
STATUS_WORDS = {
    "active": "active",
    "aktif": "active",
    "inactive": "inactive",
    "tidak aktif": "inactive",
    "nonaktif": "inactive",
    "non-aktif": "inactive",
}


def settings() -> dict[str, Any]:
    return current_app.config["KABAR"]


def normalise(phone: str, field: str = "phone") -> str:
    """The phone in its stored form, or a 422 naming ``field``."""
    try:
        return normalise_phone(str(phone), settings()["PHONE_REGION"])
    except InvalidPhone as exc:
        raise ValidationFailed(errors={field: [str(exc)]}) from None


def person_id(value: str) -> str:
    """A person id as stored: trimmed, upper case."""
    cleaned = str(value).strip().upper()
    if not PERSON_ID.match(cleaned):
        raise ValidationFailed(
            errors={
                "id": [
                    "Use 1-32 letters, digits, '.', '/', '_' or '-', "
                    "starting with a letter or digit (e.g. PGW2402001)."
                ]
            }
        )
    return cleaned


def status_of(value: str) -> str:
    status = STATUS_WORDS.get(str(value).strip().lower())
    if status is None:
        raise ValidationFailed(
            errors={
                "status": [
                    f"Use one of: {', '.join(PERSON_STATUSES)} (Aktif / Tidak Aktif also work)."
                ]
            }
        )
    return status


def get(ident: str) -> Person:
    row = db.session.get(Person, str(ident).strip().upper())
    if row is None:
        raise PersonNotFound(f"No person with id {ident!r}.")
    return row


def find_by_phone(phone: str | None) -> Person | None:
    """The person with this (normalised) phone, if any."""
    if not phone:
        return None
    return db.session.scalar(sa.select(Person).where(Person.phone == phone))


def clean(fields: dict[str, Any]) -> dict[str, Any]:
    values = {key: value for key, value in fields.items() if key in FIELDS}
    if "name" in values:
        values["name"] = str(values["name"] or "").strip()
        if not values["name"]:
            raise ValidationFailed(errors={"name": ["A person needs a name."]})
    if "phone" in values:
        values["phone"] = normalise(values["phone"])
    if "status" in values:
        values["status"] = status_of(values["status"])
    if "email" in values:
        values["email"] = (values["email"] or "").strip() or None
        if values["email"]:
            try:
                ma.validate.Email()(values["email"])
            except ma.ValidationError:
                raise ValidationFailed(errors={"email": ["Not a valid email address."]}) from None
    for key in ("department", "unit", "notes"):
        if key in values:
            values[key] = str(values[key] or "").strip()
    return values


def _check_phone_free(phone: str, ident: str | None) -> None:
    owner = find_by_phone(phone)
    if owner is not None and owner.id != ident:
        raise Conflict(
            f"The phone {phone} already belongs to {owner.name} ({owner.id}).", code="phone_taken"
        )


def new_id(at: datetime | None = None) -> str:
    return numbering.next_number(ID_PREFIX, at or utcnow(), settings()["HELPDESK_TIMEZONE"])


def create(*, id: str | None = None, commit: bool = True, **fields: Any) -> Person:
    values = clean(fields)
    for required in ("name", "phone"):
        if not values.get(required):
            raise ValidationFailed(errors={required: ["Missing data for required field."]})
    ident = person_id(id) if id else None
    if ident and db.session.get(Person, ident) is not None:
        raise Conflict(f"A person with id {ident} already exists.", code="person_exists")
    _check_phone_free(values["phone"], ident)
    if ident is None:
        ident = new_id()
        while db.session.get(Person, ident) is not None:  # someone typed that id by hand
            ident = new_id()
    person = Person(id=ident, **values)
    db.session.add(person)
    if commit:
        db.session.commit()
    return person


def update(person: Person, *, commit: bool = True, **fields: Any) -> Person:
    values = clean(fields)
    if "phone" in values:
        _check_phone_free(values["phone"], person.id)
    for key, value in values.items():
        setattr(person, key, value)
    if commit:
        db.session.commit()
    return person


def delete(person: Person) -> None:
    """Forget a person; their tickets keep the reporter's phone and name."""
    db.session.delete(person)
    db.session.commit()


def search(
    *, q: str | None = None, status: str | None = None, department: str | None = None
) -> sa.Select:
    query = sa.select(Person)
    if status:
        query = query.where(Person.status == status_of(status))
    if department:
        query = query.where(sa.func.lower(Person.department) == department.strip().lower())
    if q:
        needle = q.strip().lower()
        query = query.where(
            sa.or_(
                sa.func.lower(Person.name).contains(needle, autoescape=True),
                sa.func.lower(Person.id).contains(needle, autoescape=True),
                Person.phone.contains(re.sub(r"\D", "", needle) or needle, autoescape=True),
            )
        )
    return query
