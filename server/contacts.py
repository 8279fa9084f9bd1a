"""Looking people up through a session: whether numbers are on WhatsApp (answers of the last
few minutes reused, the rest asked of the runtime), whether they are among the session's
contacts, and a contact's phone JID and LID. What /api/v1/sessions/{id}/contacts answers."""

from __future__ import annotations

from typing import Any

from flask import current_app

from server import directory
from server.runtime import live
from server.whatsapp.jids import InvalidPhone, parse_person, phone_of, to_jid


def _region() -> str:
    return current_app.config["KABAR"]["PHONE_REGION"]


def check(session, queries: list[str]) -> list[dict]:
    """Each query in order, with its number, JID, whether it is on WhatsApp and whether
    it is one of the session's contacts. A query that is not a number answers registered
    and in_contacts false with an error, not a failed batch."""
    results: list[dict[str, Any]] = []
    phones: dict[str, dict | None] = {}
    for query in queries:
        try:
            phone = phone_of(to_jid(query, _region()))
            if phone is None:
                raise InvalidPhone(f"{query!r} is not a phone number.")
            results.append(
                {
                    "query": query,
                    "phone": phone,
                    "jid": None,
                    "registered": False,
                    "in_contacts": False,
                    "saved": False,
                    "name": None,
                    "error": None,
                }
            )
            phones[phone] = None
        except InvalidPhone as exc:
            results.append(
                {
                    "query": query,
                    "phone": None,
                    "jid": None,
                    "registered": False,
                    "in_contacts": False,
                    "saved": False,
                    "name": None,
                    "error": str(exc),
                }
            )
    known = directory.contacts_by_phone(session.id, list(phones))
    _fill_registered(session, phones)
    for result in results:
        answer = phones.get(result["phone"]) if result["phone"] else None
        if answer:
            result["jid"], result["registered"] = answer.get("jid"), bool(answer["registered"])
        contact = known.get(result["phone"]) if result["phone"] else None
        if contact is not None:
            result.update(contact_fields(contact))
    return results


def _fill_registered(session, phones: dict[str, dict | None]) -> None:
    """Whether each number is on WhatsApp: answers from the last few minutes are reused
    (KABAR_REGISTERED_CACHE_SECONDS), only the rest is asked of the runtime. A check
    before every send of a busy flow then costs no runtime round trip."""
    within = current_app.config["KABAR"]["REGISTERED_CACHE_SECONDS"]
    for _payload, answers in live.recent_registrations(session.id, within=within):
        for answer in answers or []:
            if answer.get("query") in phones and phones[answer["query"]] is None:
                phones[answer["query"]] = answer
    missing = [phone for phone, answer in phones.items() if answer is None]
    if missing:
        answers = live.is_on_whatsapp(session.id, missing)
        phones.update({a["query"]: a for a in answers})


def contact_fields(contact) -> dict:
    return {"in_contacts": True, "saved": contact.saved, "name": contact.name or contact.push_name}


def ids(session, who: str) -> dict:
    """A contact's phone JID and LID, as far as this session's device knows them."""
    jid = parse_person(who, _region())
    answer = live.lid_lookup(session.id, [jid])
    return {**answer[0], "query": who}
