"""``server.tickets.host.handle``: the helpdesk as the ticket nodes reach it."""

from __future__ import annotations

import pytest

from server.errors import KabarError
from server.tickets import host, lifecycle, staff
from server.tickets.actors import Actor
from tests.server.tickets.conftest import ADMIN_PHONE, REPORTER, STRANGER, TBO2_PHONE, TBO_PHONE


def _actor(desk, phone: str | None, **extra) -> dict:
    if phone is None:
        return {"workflow": "helpdesk-notify", **extra}
    return {
        "sender": phone,
        "chat": f"{phone}@s.whatsapp.net",
        "session": desk.session.id,
        "name": extra.pop("name", ""),
        "workflow": "helpdesk",
        **extra,
    }


def _handle(desk, action: str, params: dict, phone: str | None = REPORTER, **extra) -> dict:
    return host.handle(action, params, actor=_actor(desk, phone, **extra))


def _refused(code: str, desk, action: str, params: dict, phone: str | None = REPORTER):
    with pytest.raises(KabarError) as caught:
        _handle(desk, action, params, phone)
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_a_report_with_its_photo_becomes_a_ticket(desk):
    message = desk.message(text="#request lampu mati di aula", photo=b"jpeg")
    answer = _handle(
        desk, "create", {"text": "lampu mati di aula"}, message_id=message.wa_id, name="Marta"
    )
    ticket = answer["ticket"]
    assert ticket["number"].startswith("BRT") and ticket["status"] == "new"
    assert ticket["reporter"] == {
        "phone": REPORTER,
        "jid": f"{REPORTER}@s.whatsapp.net",
        "name": "R Marta Dinata",
        "person_id": "PGW2402001",
        "department": "TIF",
        "unit": "IT",
    }
    assert ticket["session_id"] == desk.session.id
    assert ticket["photo"] == {
        "message_id": message.id,
        "url": f"/api/v1/tickets/{ticket['number']}/photo",
    }
    assert ticket["last_update"]["note"] == "lampu mati di aula"
    assert ticket["created_local"].endswith(" WIB")
    stored = lifecycle.find(ticket["number"])
    assert stored.source_message_id == message.id


def test_a_report_without_media_has_no_photo_and_a_wrong_photo_is_invalid(desk):
    plain = desk.message(text="#request AC bocor")
    answer = _handle(desk, "create", {"text": "AC bocor"}, message_id=plain.id)
    assert answer["ticket"]["photo"] is None
    _refused("validation_error", desk, "create", {"text": "AC", "photo": plain.id})
    _refused("validation_error", desk, "create", {"text": "  "})


def test_reporting_for_someone_else_is_for_managers(desk):
    _refused("ticket_not_allowed", desk, "create", {"text": "AC", "reporter": STRANGER})
    answer = _handle(
        desk, "create", {"text": "AC", "reporter": "0812-3456-7890"}, phone=ADMIN_PHONE
    )
    assert answer["ticket"]["reporter"]["person_id"] == "PGW2402001"
    answer = _handle(
        desk, "create", {"text": "AC", "reporter": STRANGER, "name": "Tamu"}, phone=None
    )
    assert answer["ticket"]["reporter"]["name"] == "Tamu"
    _refused("validation_error", desk, "create", {"text": "AC"}, phone=None)


def test_guests_are_refused_when_the_setting_is_off(desk, app, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "HELPDESK_GUESTS", False)
    _refused("reporter_not_registered", desk, "create", {"text": "AC"}, phone=STRANGER)


def test_assign_and_work_a_ticket_over_whatsapp(desk):
    number = _handle(desk, "create", {"text": "pagar rusak"})["ticket"]["number"]
    _refused(
        "ticket_not_allowed",
        desk,
        "assign",
        {"number": number, "assignee": TBO_PHONE},
        phone=TBO_PHONE,
    )
    _refused(
        "staff_not_found",
        desk,
        "assign",
        {"number": number, "assignee": STRANGER},
        phone=ADMIN_PHONE,
    )
    answer = _handle(
        desk,
        "assign",
        {"number": f"#{number.lower()}", "assignee": "siswanto", "note": "segera"},
        phone=ADMIN_PHONE,
    )
    assert answer["ticket"]["assignee"]["phone"] == TBO_PHONE
    _refused(
        "ticket_not_allowed",
        desk,
        "update",
        {"number": number, "action": "start"},
        phone=TBO2_PHONE,
    )
    _handle(desk, "update", {"number": number, "action": "start"}, phone=TBO_PHONE)
    proof = desk.message(sender=TBO_PHONE, text=f"#report {number} sudah diganti", photo=b"after")
    answer = _handle(
        desk,
        "update",
        {"number": number, "action": "progress", "note": "sudah diganti"},
        phone=TBO_PHONE,
        message_id=proof.wa_id,
    )
    assert answer["ticket"]["last_update"]["photo"]["message_id"] == proof.id
    _handle(desk, "update", {"number": number, "action": "finish"}, phone=TBO_PHONE)
    _refused(
        "invalid_transition",
        desk,
        "update",
        {"number": number, "action": "finish"},
        phone=TBO_PHONE,
    )
    done = _handle(desk, "update", {"number": number, "action": "confirm"})
    assert done["ticket"]["status"] == "confirmed"
    _refused("validation_error", desk, "update", {"number": number, "action": "explode"})
    _refused("ticket_not_found", desk, "update", {"number": "BRT0000999", "action": "start"})


def test_lookup_is_for_the_reporter_the_assignee_and_staff(desk):
    number = _handle(desk, "create", {"text": "kran bocor"})["ticket"]["number"]
    lifecycle.assign(
        lifecycle.find(number), staff.get(desk.tbo.id), Actor.system(), note="bawa kunci"
    )
    found = _handle(desk, "lookup", {"number": number})["ticket"]
    assert [step["kind"] for step in found["history"]] == ["created", "assigned"]
    assert found["history"][1]["note"] == "bawa kunci"
    assert found["last_update"]["note"] == "bawa kunci"
    assert found["history"][1]["at_local"].endswith("WIB")
    assert _handle(desk, "lookup", {"number": number}, phone=TBO2_PHONE)["ticket"]
    assert _handle(desk, "lookup", {"number": number}, phone=None)["ticket"]
    _refused("ticket_not_allowed", desk, "lookup", {"number": number}, phone=STRANGER)
    _refused("ticket_not_found", desk, "lookup", {"number": "halo"})
    _refused("ticket_not_found", desk, "lookup", {})


def test_list_a_field_officers_jobs_and_a_reporters_tickets(desk):
    numbers = [
        _handle(desk, "create", {"text": f"laporan {n}"})["ticket"]["number"] for n in range(3)
    ]
    for number in numbers[:2]:
        lifecycle.assign(lifecycle.find(number), staff.get(desk.tbo.id), Actor.system())
    lifecycle.finish(lifecycle.find(numbers[1]), Actor.system())
    jobs = _handle(desk, "list", {}, phone=TBO_PHONE)
    assert [t["number"] for t in jobs["tickets"]] == [numbers[0]]
    assert (jobs["count"], jobs["total"]) == (1, 1)
    everything = _handle(desk, "list", {"status": ["open", "done"]}, phone=TBO_PHONE)
    assert [t["number"] for t in everything["tickets"]] == numbers[:2]
    mine = _handle(desk, "list", {"role": "reporter", "limit": 2})
    assert (mine["count"], mine["total"]) == (2, 2)  # the done one is not open
    _refused("ticket_not_allowed", desk, "list", {})  # a reporter has no assignments
    _refused("ticket_not_allowed", desk, "list", {"role": "all"}, phone=TBO_PHONE)
    _refused("ticket_not_allowed", desk, "list", {"phone": TBO_PHONE}, phone=TBO2_PHONE)
    assert _handle(desk, "list", {"phone": TBO_PHONE}, phone=ADMIN_PHONE)["count"] == 1
    assert _handle(desk, "list", {"role": "all"}, phone=ADMIN_PHONE)["total"] == 2


def test_who_is_this_sender(desk):
    admin = _handle(desk, "person", {}, phone=ADMIN_PHONE)
    assert (admin["kind"], admin["name"], admin["manages"]) == ("staff", "Dery Dehaelt", True)
    assert admin["staff"]["level"] == "administrator" and admin["person"] is None
    tbo = _handle(desk, "person", {"phone": "0821-2460-3757"}, phone=None)
    assert (tbo["kind"], tbo["staff"]["level"], tbo["manages"]) == ("staff", "tbo", False)
    person = _handle(desk, "person", {})
    assert (person["kind"], person["person"]["id"], person["name"]) == (
        "person",
        "PGW2402001",
        "R Marta Dinata",
    )
    unknown = _handle(desk, "person", {}, phone=STRANGER, name="Tamu")
    assert (unknown["kind"], unknown["name"], unknown["phone"]) == ("unknown", "Tamu", STRANGER)
    _refused("validation_error", desk, "person", {"phone": "halo"})


def test_a_sender_known_only_by_an_unresolved_lid_is_a_reporter_without_a_phone(desk):
    answer = host.handle(
        "create",
        {"text": "AC"},
        actor={"sender": "123456789@lid", "chat": "123456789@lid", "session": desk.session.id},
    )
    assert answer["ticket"]["reporter"]["phone"] is None
    assert answer["ticket"]["reporter"]["jid"] == "123456789@lid"


def test_unknown_actions_are_refused(desk):
    _refused("unknown_action", desk, "delete", {})


def test_a_run_without_a_sender_says_whose_tickets_to_list(desk):
    _refused("validation_error", desk, "list", {"role": "reporter"}, phone=None)
    assert _handle(desk, "list", {"phone": TBO_PHONE}, phone=None)["count"] == 0


def test_a_repeated_step_creates_one_ticket(desk):
    context = _actor(desk, REPORTER)
    first = host.handle("create", {"text": "AC"}, actor=context, idempotency_key="r1:1:1")
    again = host.handle("create", {"text": "AC"}, actor=context, idempotency_key="r1:1:1")
    assert first["ticket"]["number"] == again["ticket"]["number"]
