"""What a session knows about the groups and people it talks to, from the database alone.

Contacts (``contacts``) are the people of the session's address book, where the transport
syncs one (``contact.updated``: saved, full name, push name), and everyone the session had
a private chat with (``message.received`` in a chat that is not a group).

Group names come from ``chat_states.name`` of the session's group chats: kept when the
groups API lists, creates or changes a group, and from the ``group.joined`` and
``group.updated`` events the transport reports (``learn``, fed by ``eventlog.record``
for every stored event). Nothing here asks the live transport, so a send that names a
group is resolved inside the request, whether the runtime is up or not.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.events import (
    ContactUpdated,
    Event,
    GroupJoined,
    GroupUpdated,
    MessageReceived,
    Party,
)
from server.models import ChatState, Contact, WaSession, db, utcnow
from server.whatsapp.jids import GROUP_SERVER, LID_SERVER, USER_SERVER, split_jid

NAME_MAX = 256  # chat_states.name


def _fold(name: str) -> str:
    """Names compare case-insensitively, Unicode included (SQLite's lower() is ASCII)."""
    return " ".join(name.split()).casefold()


def groups_named(session_id: str, name: str) -> list[dict[str, str]]:
    """The session's groups whose name is ``name`` (exact, case-insensitive, runs of
    spaces as one), as ``{"jid", "name"}``; a session is in at most a few thousand
    groups, so they are compared here rather than with the database's own lower()."""
    wanted = _fold(name)
    if not wanted:
        return []
    rows = db.session.execute(
        sa.select(ChatState.chat_jid, ChatState.name)
        .where(
            ChatState.session_id == session_id,
            ChatState.name.is_not(None),
            ChatState.chat_jid.like(f"%@{GROUP_SERVER}"),
        )
        .order_by(ChatState.chat_jid)
    ).all()
    return [{"jid": r.chat_jid, "name": r.name} for r in rows if _fold(r.name) == wanted]


def remember_group_name(session_id: str, jid: str, name: str) -> None:
    """Keep a group's name (in the caller's transaction); made on first need, once even
    when two writers race."""
    name = name[:NAME_MAX]
    query = sa.select(ChatState).where(
        ChatState.session_id == session_id, ChatState.chat_jid == jid
    )
    state = db.session.scalar(query)
    if state is None:
        try:
            with db.session.begin_nested():
                db.session.add(ChatState(session_id=session_id, chat_jid=jid, name=name))
            return
        except IntegrityError:
            state = db.session.scalar(query)
    if state is not None and state.name != name:
        state.name = name


def learn(event: Event, session: WaSession | None) -> None:
    """What a stored event teaches about the session's groups and contacts (in the
    caller's transaction). Called for every event ``eventlog.record`` stores."""
    if session is None:
        return
    if isinstance(event, GroupJoined | GroupUpdated) and event.name:
        remember_group_name(session.id, event.group.jid, event.name)
    elif isinstance(event, MessageReceived) and not event.message.is_group:
        message = event.message
        push_name = None if message.from_me else message.sender.name
        remember_contact(session.id, message.chat, push_name=push_name)
    elif isinstance(event, ContactUpdated):
        remember_contact(
            session.id,
            event.contact,
            push_name=event.push_name,
            full_name=event.full_name,
            saved=event.saved,
        )


# --- contacts -----------------------------------------------------------------------------


def _person_jid(party: Party) -> str | None:
    """The phone JID when the number is known, else the @lid; None for anything else."""
    if party.phone:
        return f"{party.phone}@{USER_SERVER}"
    try:
        user, server = split_jid(party.jid)
    except ValueError:
        return None
    return f"{user}@{server}" if server in (USER_SERVER, LID_SERVER) else None


def remember_contact(
    session_id: str,
    party: Party,
    *,
    push_name: str | None = None,
    full_name: str | None = None,
    saved: bool | None = None,
) -> None:
    """Add or update one contact (in the caller's transaction). A chat only ever adds;
    the address book sync also says whether the person is saved and under what name."""
    jid = _person_jid(party)
    if jid is None:
        return
    query = sa.select(Contact).where(Contact.session_id == session_id, Contact.jid == jid)
    contact = db.session.scalar(query)
    if contact is None:
        try:
            with db.session.begin_nested():
                contact = Contact(
                    session_id=session_id,
                    jid=jid,
                    phone=party.phone,
                    saved=False,
                    source="chat" if saved is None else "address_book",
                )
                db.session.add(contact)
        except IntegrityError:
            contact = db.session.scalar(query)
            if contact is None:
                return
    if party.phone and contact.phone != party.phone:
        contact.phone = party.phone
    if push_name and contact.push_name != push_name[:NAME_MAX]:
        contact.push_name = push_name[:NAME_MAX]
    if full_name is not None and contact.name != (full_name[:NAME_MAX] or None):
        contact.name = full_name[:NAME_MAX] or None
    if saved is not None and contact.saved != saved:
        contact.saved = saved
        contact.source = "address_book"


def sync_address_book(session: WaSession, entries: list[dict]) -> dict[str, int]:
    """Store the phone's address book as the transport synced it: a ``contact.updated``
    event for each contact added, renamed or no longer saved (stored by ``learn`` like
    any event), nothing for what did not change. Commits."""
    from server import eventlog

    saved = {
        c.jid: c
        for c in db.session.scalars(
            sa.select(Contact).where(Contact.session_id == session.id, Contact.saved.is_(True))
        )
    }
    counts = {"added": 0, "changed": 0, "removed": 0, "total": 0}
    now = utcnow()
    seen = set()
    for entry in entries:
        try:
            user, server = split_jid(str(entry.get("jid") or ""))
        except ValueError:
            continue
        if server != USER_SERVER:
            continue
        party = Party(jid=f"{user}@{USER_SERVER}", phone=user)
        full_name = (entry.get("full_name") or entry.get("first_name") or "")[:NAME_MAX]
        push_name = entry.get("push_name") or None
        seen.add(party.jid)
        counts["total"] += 1
        known = saved.get(party.jid)
        if (
            known is not None
            and (known.name or "") == full_name
            and (not push_name or known.push_name == push_name)
        ):
            continue
        counts["added" if known is None else "changed"] += 1
        eventlog.record(
            ContactUpdated(
                contact=party, timestamp=now, saved=True, full_name=full_name, push_name=push_name
            ),
            session,
        )
    for jid, contact in saved.items():
        if jid not in seen:
            counts["removed"] += 1
            eventlog.record(
                ContactUpdated(
                    contact=Party(jid=jid, phone=contact.phone), timestamp=now, saved=False
                ),
                session,
            )
    db.session.commit()
    return counts


def contacts_by_phone(session_id: str, phones: list[str]) -> dict[str, Contact]:
    """The session's contacts among these numbers (628…), by number."""
    if not phones:
        return {}
    rows = db.session.scalars(
        sa.select(Contact).where(Contact.session_id == session_id, Contact.phone.in_(phones))
    )
    return {row.phone: row for row in rows if row.phone}


def contact_listing(
    session_id: str, *, q: str | None = None, saved: bool | None = None
) -> sa.Select:
    """The session's contacts, for the contacts list (filtered by name or number)."""
    query = sa.select(Contact).where(Contact.session_id == session_id)
    if saved is not None:
        query = query.where(Contact.saved.is_(saved))
    if q and q.strip():
        text = q.strip().lower()
        digits = re.sub(r"\D", "", text).lstrip("0")  # 0812… typed, 62812… stored
        matches = [
            sa.func.lower(Contact.name).contains(text, autoescape=True),
            sa.func.lower(Contact.push_name).contains(text, autoescape=True),
        ]
        if digits:
            matches.append(Contact.phone.contains(digits, autoescape=True))
        query = query.where(sa.or_(*matches))
    return query
