"""Helpdesk staff: users with a WhatsApp phone, a level and a status.

Levels follow the book: Administrator and Staf manage tickets (also over WhatsApp), TBO
are the field officers who do the work. A staff member logs in as their user; a TBO
usually belongs to the ``field`` group, which lets them see their own assignments.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.errors import Conflict, ValidationFailed
from server.models import STAFF_LEVELS, STAFF_STATUSES, StaffProfile, User, db
from server.tickets.errors import StaffNotFound
from server.tickets.people import normalise

LEVEL_WORDS = {
    "administrator": "administrator",
    "admin": "administrator",
    "staff": "staff",
    "staf": "staff",
    "tbo": "tbo",
    "field": "tbo",
}
LABELS = {"administrator": "Administrator", "staff": "Staf", "tbo": "TBO"}
MANAGING_LEVELS = ("administrator", "staff")
STATUS_WORDS = {
    "active": "active",
    "aktif": "active",
    "inactive": "inactive",
    "tidak aktif": "inactive",
    "nonaktif": "inactive",
}


def level_of(value: str) -> str:
    level = LEVEL_WORDS.get(str(value).strip().lower())
    if level is None:
        raise ValidationFailed(
            errors={"level": [f"Use one of: {', '.join(STAFF_LEVELS)} (Staf and TBO also work)."]}
        )
    return level


def status_of(value: str) -> str:
    status = STATUS_WORDS.get(str(value).strip().lower())
    if status is None:
        raise ValidationFailed(errors={"status": [f"Use one of: {', '.join(STAFF_STATUSES)}."]})
    return status


def get(user_id: int) -> StaffProfile:
    row = db.session.get(StaffProfile, user_id)
    if row is None:
        raise StaffNotFound(f"User {user_id} is not helpdesk staff.")
    return row


def find_by_phone(phone: str | None) -> StaffProfile | None:
    if not phone:
        return None
    return db.session.scalar(sa.select(StaffProfile).where(StaffProfile.phone == phone))


def save(
    user: User, *, phone: str, level: str, status: str = "active", notes: str = ""
) -> StaffProfile:
    """Make ``user`` staff, or change their profile."""
    phone = normalise(phone)
    taken = find_by_phone(phone)
    if taken is not None and taken.user_id != user.id:
        raise Conflict(
            f"The phone {phone} already belongs to staff member {taken.user.username}.",
            code="phone_taken",
        )
    profile = db.session.get(StaffProfile, user.id) or StaffProfile(user_id=user.id)
    profile.phone, profile.level = phone, level_of(level)
    profile.status, profile.notes = status_of(status), notes.strip()
    db.session.add(profile)
    db.session.commit()
    return profile


def remove(profile: StaffProfile) -> None:
    """The user is no longer staff; tickets assigned to them stay assigned."""
    db.session.delete(profile)
    db.session.commit()


def search(
    *, level: str | None = None, status: str | None = None, q: str | None = None
) -> sa.Select:
    query = sa.select(StaffProfile).join(User, User.id == StaffProfile.user_id)
    if level:
        query = query.where(StaffProfile.level == level_of(level))
    if status:
        query = query.where(StaffProfile.status == status_of(status))
    if q:
        needle = q.strip().lower()
        query = query.where(
            sa.or_(
                User.username.contains(needle, autoescape=True),
                sa.func.lower(User.display_name).contains(needle, autoescape=True),
            )
        )
    return query


def resolve(ref: Any) -> StaffProfile:
    """A staff member named by user id, username or phone (how a workflow names them)."""
    profile = None
    text = str(ref).strip()
    if isinstance(ref, int) or text.isdigit() and len(text) < 10:
        profile = db.session.get(StaffProfile, int(text))
    if profile is None and text:
        profile = db.session.scalar(
            sa.select(StaffProfile)
            .join(User, User.id == StaffProfile.user_id)
            .where(User.username == text.lower())
        )
    if profile is None and any(ch.isdigit() for ch in text):
        try:
            profile = find_by_phone(normalise(text))
        except ValidationFailed:
            profile = None
    if profile is None:
        raise StaffNotFound(
            f"No staff member {text!r}: give a user id, a username or the "
            "phone of someone in GET /api/v1/staff."
        )
    return profile


def display_name(user: User | None) -> str:
    if user is None:
        return ""
    return user.display_name or user.username
