"""The ticket lifecycle: who may do what, in which status, and what it records."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.errors import KabarError
from server.models import StoredEvent, db
from server.tickets import lifecycle, staff
from server.tickets.actors import Actor
from tests.server.tickets.conftest import ADMIN_PHONE, REPORTER, STRANGER, TBO2_PHONE, TBO_PHONE


def _new(desk, text: str = "pagar tidak bisa ditutup", **kwargs):
    reporter = desk.actor(REPORTER, name="Marta")
    return lifecycle.create(
        text,
        reporter,
        reporter_phone=REPORTER,
        reporter_jid=f"{REPORTER}@s.whatsapp.net",
        session_id=desk.session.id,
        **kwargs,
    )


def _refused(code: str, step, *args, **kwargs) -> str:
    with pytest.raises(KabarError) as caught:
        step(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def _gateway_events() -> list[StoredEvent]:
    return db.session.scalars(
        sa.select(StoredEvent)
        .where(StoredEvent.type.startswith("ticket."))
        .order_by(StoredEvent.seq)
    ).all()


def test_the_whole_story_of_a_report(desk):
    ticket = _new(desk, photo=desk.message(photo=b"jpeg bytes").id)
    assert ticket.status == "new" and ticket.person_id == "PGW2402001"
    assert ticket.reporter_name == "R Marta Dinata"  # the directory's name, not the push name
    admin, tbo = desk.actor(ADMIN_PHONE), desk.actor(TBO_PHONE)
    lifecycle.assign(ticket, staff.get(desk.tbo.id), admin, note="cek ke lokasi")
    assert (ticket.status, ticket.assignee_id) == ("assigned", desk.tbo.id)
    lifecycle.start(ticket, tbo)
    proof = desk.message(sender=TBO_PHONE, text="#report", photo=b"after").id
    lifecycle.progress(ticket, tbo, note="engsel diganti", photo=proof)
    lifecycle.finish(ticket, tbo, note="selesai")
    assert ticket.status == "done" and ticket.duration_seconds is not None
    assert ticket.assignments[-1].status == "done"
    lifecycle.confirm(ticket, desk.actor(REPORTER), note="terima kasih")
    assert ticket.status == "confirmed" and ticket.confirmed_at is not None
    assert [(e.kind, e.status, e.actor_kind) for e in ticket.events] == [
        ("created", "new", "reporter"),
        ("assigned", "assigned", "staff"),
        ("started", "in_progress", "staff"),
        ("progress", "in_progress", "staff"),
        ("finished", "done", "staff"),
        ("confirmed", "confirmed", "reporter"),
    ]
    assert ticket.events[3].photo_message_id == proof
    assert lifecycle.last_update(ticket).note == "terima kasih"

    events = _gateway_events()
    assert [e.type for e in events] == [
        "ticket.created",
        "ticket.assigned",
        "ticket.started",
        "ticket.progress",
        "ticket.finished",
        "ticket.confirmed",
    ]
    assert all(e.session_id == desk.session.id and e.owner_id == desk.owner.id for e in events)
    assigned = events[1].data
    assert assigned["ticket"]["number"] == ticket.number
    assert assigned["ticket"]["chat"] == f"{REPORTER}@s.whatsapp.net"
    assert assigned["assignee"] == {
        "kind": "staff",
        "name": "Siswanto",
        "phone": TBO_PHONE,
        "jid": f"{TBO_PHONE}@s.whatsapp.net",
        "user_id": desk.tbo.id,
        "person_id": None,
        "level": "tbo",
    }
    assert assigned["actor"]["name"] == "Dery Dehaelt" and assigned["note"] == "cek ke lokasi"
    assert events[3].data["photo"] == proof
    assert events[4].data["duration_seconds"] == ticket.duration_seconds


def test_only_the_assignee_or_a_manager_works_on_a_ticket(desk):
    ticket = _new(desk)
    tbo, other_tbo, reporter = (desk.actor(TBO_PHONE), desk.actor(TBO2_PHONE), desk.actor(REPORTER))
    message = _refused("ticket_not_allowed", lifecycle.assign, ticket, staff.get(desk.tbo.id), tbo)
    assert message == f"Only a manager may assign ticket {ticket.number}."
    lifecycle.assign(ticket, staff.get(desk.tbo.id), desk.actor(ADMIN_PHONE))
    message = _refused("ticket_not_allowed", lifecycle.start, ticket, other_tbo)
    assert message == (
        f"Only the assignee (Siswanto) or a manager may start ticket {ticket.number}."
    )
    _refused("ticket_not_allowed", lifecycle.progress, ticket, reporter, note="?")
    lifecycle.start(ticket, tbo)
    _refused("ticket_not_allowed", lifecycle.finish, ticket, other_tbo)
    lifecycle.finish(ticket, tbo)
    _refused("ticket_not_allowed", lifecycle.confirm, ticket, tbo)
    _refused("ticket_not_allowed", lifecycle.confirm, ticket, desk.actor(STRANGER))
    lifecycle.confirm(ticket, reporter)


def test_impossible_steps_say_why(desk):
    ticket = _new(desk)
    admin = desk.actor(ADMIN_PHONE)
    message = _refused("invalid_transition", lifecycle.start, ticket, admin)
    assert message == (
        f"Ticket {ticket.number} is new; it can be started only when it is assigned, pending."
    )
    _refused("invalid_transition", lifecycle.confirm, ticket, desk.actor(REPORTER))
    _refused("invalid_transition", lifecycle.reopen, ticket, admin)
    _refused("validation_error", lifecycle.progress, ticket, admin, note="  ")
    lifecycle.assign(ticket, staff.get(desk.tbo.id), admin)
    lifecycle.finish(ticket, admin)  # a manager may close it for the officer
    _refused("invalid_transition", lifecycle.assign, ticket, staff.get(desk.tbo2.id), admin)
    _refused("invalid_transition", lifecycle.finish, ticket, admin)
    _refused("invalid_transition", lifecycle.hold, ticket, admin)
    staff.save(desk.tbo2, phone=TBO2_PHONE, level="tbo", status="inactive")
    lifecycle.reopen(ticket, admin)
    _refused("staff_inactive", lifecycle.assign, ticket, staff.get(desk.tbo2.id), admin)


def test_reassigning_replaces_the_assignment(desk):
    ticket = _new(desk)
    admin = desk.actor(ADMIN_PHONE)
    lifecycle.assign(ticket, staff.get(desk.tbo.id), admin, note="pertama")
    lifecycle.start(ticket, desk.actor(TBO_PHONE))
    lifecycle.assign(ticket, staff.get(desk.tbo2.id), admin, note="ganti petugas")
    assert (ticket.status, ticket.assignee_id, ticket.started_at) == (
        "assigned",
        desk.tbo2.id,
        None,
    )
    assert [(a.assignee_name, a.status) for a in ticket.assignments] == [
        ("Siswanto", "replaced"),
        ("Adrasha", "active"),
    ]
    assert _gateway_events()[-1].data["previous"]["name"] == "Siswanto"
    _refused("ticket_not_allowed", lifecycle.start, ticket, desk.actor(TBO_PHONE))


def test_hold_reopen_and_notes(desk):
    ticket = _new(desk)
    admin, tbo = desk.actor(ADMIN_PHONE), desk.actor(TBO_PHONE)
    lifecycle.assign(ticket, staff.get(desk.tbo.id), admin)
    lifecycle.hold(ticket, tbo, note="menunggu suku cadang")
    assert ticket.status == "pending" and ticket.assignments[-1].status == "pending"
    lifecycle.start(ticket, tbo)  # back to work
    assert ticket.status == "in_progress" and ticket.assignments[-1].status == "active"
    lifecycle.finish(ticket, tbo)
    lifecycle.reopen(ticket, desk.actor(REPORTER), note="masih rusak")
    assert (ticket.status, ticket.finished_at, ticket.duration_seconds) == ("assigned", None, None)
    lifecycle.add_note(ticket, admin, note="prioritas")
    assert lifecycle.last_update(ticket).note == "masih rusak"  # notes are not updates
    status = [e for e in _gateway_events() if e.type == "ticket.status"][0].data
    assert (status["status"], status["previous_status"]) == ("pending", "assigned")
    reopened = [e for e in _gateway_events() if e.type == "ticket.reopened"][0].data
    assert reopened["previous_status"] == "done" and reopened["ticket"]["status"] == "assigned"


def test_change_status_is_the_step_that_leads_there(desk):
    ticket = _new(desk)
    manager = Actor.system()
    _refused("invalid_transition", lifecycle.change_status, ticket, "assigned", manager)
    lifecycle.assign(ticket, staff.get(desk.tbo.id), manager)
    for status in ("in_progress", "pending", "in_progress", "done", "confirmed", "assigned"):
        lifecycle.change_status(ticket, status, manager)
        assert ticket.status == status
    _refused("invalid_transition", lifecycle.change_status, ticket, "new", manager)


def test_guests_need_the_setting(desk, app, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "HELPDESK_GUESTS", False)
    stranger = desk.actor(STRANGER, name="Tamu")
    _refused(
        "reporter_not_registered", lifecycle.create, "AC bocor", stranger, reporter_phone=STRANGER
    )
    desk.person.status = "inactive"
    db.session.commit()
    _refused(
        "reporter_not_registered",
        lifecycle.create,
        "AC bocor",
        desk.actor(REPORTER),
        reporter_phone=REPORTER,
    )
    # Staff report from WhatsApp, and operators record reports for anyone.
    assert lifecycle.create("AC bocor", desk.actor(TBO_PHONE), reporter_phone=TBO_PHONE).number
    assert (
        lifecycle.create(
            "AC bocor", Actor.system(), reporter_phone=STRANGER, reporter_name="Tamu"
        ).reporter_name
        == "Tamu"
    )
    monkeypatch.setitem(app.config["KABAR"], "HELPDESK_GUESTS", True)
    guest = lifecycle.create("AC bocor", stranger, reporter_phone=STRANGER, reporter_name="Tamu")
    assert (guest.person_id, guest.reporter_name) == (None, "Tamu")


def test_a_step_repeated_with_its_key_happens_once(desk):
    reporter = desk.actor(REPORTER)
    first = lifecycle.create("lampu", reporter, reporter_phone=REPORTER, key="run1:1:1")
    again = lifecycle.create("lampu", reporter, reporter_phone=REPORTER, key="run1:1:1")
    assert again.id == first.id
    lifecycle.assign(first, staff.get(desk.tbo.id), Actor.system(), key="run1:2:1")
    lifecycle.assign(first, staff.get(desk.tbo.id), Actor.system(), key="run1:2:1")
    assert len(first.events) == 2 and len(_gateway_events()) == 2


def test_photos_come_from_stored_messages_with_media(desk):
    text_only = desk.message(text="#request lampu")
    photo = desk.message(photo=b"img")
    here = [desk.session.id]
    assert lifecycle.photo_of(photo.wa_id, session_ids=here) == photo.id
    assert lifecycle.photo_of(photo.id, session_ids=None) == photo.id
    assert lifecycle.photo_of(text_only.id, session_ids=here) is None
    assert lifecycle.photo_of(photo.id, session_ids=["another"]) is None
    _refused("validation_error", lifecycle.photo_of, text_only.id, session_ids=here, required=True)


def test_a_deleted_staff_user_leaves_their_tickets_unassigned(desk):
    from server.auth import accounts

    ticket = _new(desk)
    lifecycle.assign(ticket, staff.get(desk.tbo.id), desk.actor(ADMIN_PHONE))
    lifecycle.start(ticket, desk.actor(TBO_PHONE), note="otw")
    accounts.delete_user(desk.tbo)
    db.session.expire_all()
    ticket = lifecycle.find(ticket.number)
    assert (ticket.assignee_id, ticket.status) == (None, "in_progress")
    assert ticket.events[-1].actor_name == "Siswanto" and ticket.events[-1].actor_user_id is None
    assert ticket.assignments[0].assignee_name == "Siswanto"
    assert lifecycle.staff.find_by_phone(TBO_PHONE) is None
