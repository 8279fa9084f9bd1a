"""A small helpdesk to test against: a session, a person, staff at each level."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from server import sessions
from server.auth.principal import Principal
from server.models import Message, Person, User, WaSession, db, utcnow
from server.tickets import people, staff
from server.tickets.actors import Actor
from server.whatsapp.transport import new_message_id

REPORTER = "6281234567890"
STRANGER = "6289876543210"
ADMIN_PHONE = "6282111470068"
TBO_PHONE = "6282124603757"
TBO2_PHONE = "6289988489470"


@dataclass
class Desk:
    session: WaSession
    owner: User
    person: Person
    admin: User  # staff at Administrator level (a Kabar operator)
    tbo: User  # a field officer (Kabar group field)
    tbo2: User

    def actor(self, phone: str, name: str = "") -> Actor:
        """Someone writing on WhatsApp."""
        return Actor.of_phone(phone, name=name, jid=f"{phone}@s.whatsapp.net")

    def message(
        self, sender: str = REPORTER, text: str = "#request lampu mati", photo: bytes | None = None
    ) -> Message:
        """An inbound message of the session; with ``photo``, an image already stored."""
        media_info = None
        if photo is not None:
            sha = _store(photo)
            media_info = {
                "mimetype": "image/jpeg",
                "size": len(photo),
                "sha256": sha,
                "download": "stored",
            }
        row = Message(
            session_id=self.session.id,
            wa_id=new_message_id(),
            direction="in",
            chat_jid=f"{sender}@s.whatsapp.net",
            chat_phone=sender,
            sender_jid=f"{sender}@s.whatsapp.net",
            sender_phone=sender,
            kind="image" if photo is not None else "text",
            text=text,
            media=media_info,
            timestamp=utcnow(),
        )
        db.session.add(row)
        db.session.commit()
        return row


def _store(data: bytes) -> str:
    from server import media

    return media.store(data, mimetype="image/jpeg", filename="lampu.jpg").sha256


@pytest.fixture
def desk(app, make_user) -> Desk:
    owner = make_user("operator", username="helpdesk")
    session = sessions.create(
        Principal.for_user(owner), label="Helpdesk", transport="sandbox", auto_start=False
    )
    person = people.create(
        id="PGW2402001", name="R Marta Dinata", phone="0812-3456-7890", department="TIF", unit="IT"
    )
    admin = make_user("operator", username="dery", display_name="Dery Dehaelt")
    staff.save(admin, phone="0821-1147-0068", level="Administrator")  # ADMIN_PHONE
    tbo = make_user("field", username="siswanto", display_name="Siswanto")
    staff.save(tbo, phone="0821-2460-3757", level="TBO")
    tbo2 = make_user("field", username="adrasha", display_name="Adrasha")
    staff.save(tbo2, phone="+62 899-8848-9470", level="tbo")
    return Desk(session, owner, person, admin, tbo, tbo2)
