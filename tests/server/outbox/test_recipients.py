"""Who a send's ``to`` means: a number, a JID or a group's name, never a guess. The same
resolution for REST, workflows, webhook actions and broadcasts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from server import eventlog, outbox, sessions
from server.auth import Principal
from server.errors import Conflict, NotFound, ValidationFailed
from server.events import GroupJoined, GroupUpdated, Party
from server.models import OutboxMessage, db
from server.outbox import broadcast
from server.webhooks import actions
from server.workflows.context import ServerContext

ARISAN = "120363000000000001@g.us"
ARISAN_LAMA = "120363000000000002@g.us"
RAPAT = "120363000000000003@g.us"


@pytest.fixture
def session(make_user):
    return sessions.create(
        Principal.for_user(make_user("operator")), label="s", transport="sandbox", auto_start=False
    )


def _joined(session, jid: str, name: str) -> None:
    """The transport reports the session in a group (stored like the sink stores it)."""
    eventlog.record(
        GroupJoined(group=Party(jid=jid), name=name, timestamp=datetime.now(UTC)), session
    )
    db.session.commit()


def _to(session, to: str) -> str:
    row, _created = outbox.send(session, {"to": to, "text": "Rapat jam 3"})
    return row.to_jid


def test_a_group_name_is_sent_to_that_group_in_any_case(session):
    _joined(session, ARISAN, "Arisan RT 05")
    _joined(session, RAPAT, "Rapat Warga")
    assert _to(session, "Arisan RT 05") == ARISAN
    assert _to(session, "  arisan rt 05 ") == ARISAN
    assert _to(session, "RAPAT WARGA") == RAPAT


def test_a_renamed_group_answers_to_its_new_name(session):
    _joined(session, ARISAN, "Arisan RT 05")
    eventlog.record(
        GroupUpdated(group=Party(jid=ARISAN), timestamp=datetime.now(UTC), name="Arisan Ibu-ibu"),
        session,
    )
    db.session.commit()
    assert _to(session, "arisan ibu-ibu") == ARISAN
    with pytest.raises(NotFound):
        _to(session, "Arisan RT 05")


def test_a_name_with_digits_is_never_read_as_a_phone_number(session):
    with pytest.raises(NotFound) as unknown:
        _to(session, "Arisan RT 12345")
    assert unknown.value.code == "group_not_found" and "to" in unknown.value.errors
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.seq))) == 0
    _joined(session, ARISAN, "Arisan RT 12345")
    assert _to(session, "Arisan RT 12345") == ARISAN


def test_two_groups_with_one_name_are_refused_with_the_candidates(session):
    _joined(session, ARISAN, "Arisan")
    _joined(session, ARISAN_LAMA, "ARISAN")
    with pytest.raises(Conflict) as ambiguous:
        _to(session, "arisan")
    assert ambiguous.value.code == "ambiguous_recipient"
    assert ambiguous.value.errors["candidates"] == [
        {"jid": ARISAN, "name": "Arisan"},
        {"jid": ARISAN_LAMA, "name": "ARISAN"},
    ]
    assert ARISAN in ambiguous.value.message and ARISAN_LAMA in ambiguous.value.message


def test_another_sessions_group_names_mean_nothing_here(session, make_user):
    other = sessions.create(
        Principal.for_user(make_user("operator")), label="o", transport="sandbox", auto_start=False
    )
    _joined(other, ARISAN, "Arisan RT 05")
    with pytest.raises(NotFound):
        _to(session, "Arisan RT 05")


@pytest.mark.parametrize(
    "to", ["+++", "12-", "0812 3456 7890 ext. 5", "1-800-FLOWERS", "", "a" * 101]
)
def test_what_is_neither_number_jid_nor_name_is_a_422(session, to):
    with pytest.raises((ValidationFailed, NotFound)) as refused:
        _to(session, to)
    assert "to" in refused.value.errors


def test_numbers_and_jids_still_work(session):
    assert _to(session, "0812-3456-789") == "628123456789@s.whatsapp.net"
    assert _to(session, "+62 (812) 3456-789") == "628123456789@s.whatsapp.net"
    assert _to(session, ARISAN) == ARISAN
    with pytest.raises(ValidationFailed):  # mentions are people, never group names
        outbox.send(session, {"to": "0812-3456-789", "text": "hai", "mentions": ["Arisan"]})


def test_rest_sends_to_a_group_by_name(client, operator_headers, operator):
    own = sessions.create(
        Principal.for_user(operator), label="mine", transport="sandbox", auto_start=False
    )
    _joined(own, ARISAN, "Arisan RT 05")
    url = f"/api/v1/sessions/{own.id}/messages"
    sent = client.post(url, headers=operator_headers, json={"to": "arisan rt 05", "text": "x"})
    assert sent.status_code == 202 and sent.json["to"] == ARISAN
    unknown = client.post(
        url, headers=operator_headers, json={"to": "Arisan RT 12345", "text": "x"}
    )
    assert unknown.status_code == 404 and unknown.json["code"] == "group_not_found"
    junk = client.post(url, headers=operator_headers, json={"to": "++ 12 --", "text": "x"})
    assert junk.status_code == 422 and "to" in junk.json["errors"]
    _joined(own, ARISAN_LAMA, "Arisan RT 05")
    both = client.post(url, headers=operator_headers, json={"to": "Arisan RT 05", "text": "x"})
    assert both.status_code == 409 and both.json["code"] == "ambiguous_recipient"
    assert [c["jid"] for c in both.json["errors"]["candidates"]] == [ARISAN, ARISAN_LAMA]


def test_workflows_webhook_actions_and_broadcasts_resolve_names_the_same_way(session):
    _joined(session, ARISAN, "Arisan RT 05")
    context = ServerContext(owner_id=session.owner_id, run_id="run-1")
    assert (
        context.send({"to": "arisan rt 05", "text": "dari workflow"}, session=session.id)["to"]
        == ARISAN
    )
    db.session.commit()
    from nodes import NodeError

    with pytest.raises(NodeError) as refused:
        context.send({"to": "Arisan RT 12345", "text": "x"}, session=session.id)
    assert refused.value.data["code"] == "group_not_found"
    db.session.rollback()

    event = eventlog.record(
        GroupJoined(group=Party(jid=RAPAT), name="Rapat", timestamp=datetime.now(UTC)), session
    )
    db.session.commit()
    (ok, bad) = actions.run(
        [
            {"type": "send", "message": {"to": "ARISAN RT 05", "text": "a"}},
            {"type": "send", "message": {"to": "Arisan 99999", "text": "b"}},
        ],
        event,
        key_prefix="t",
    )
    assert ok["ok"] and not bad["ok"]
    db.session.commit()
    with pytest.raises(ValidationFailed) as partly:
        broadcast.create(
            session,
            message={"text": "hai"},
            recipients=[{"to": "Arisan RT 05"}, {"to": "Arisan RT 12345"}],
        )
    assert list(partly.value.errors["recipients"]) == ["1"]
    rows = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.seq)).all()
    assert [(r.to_jid, r.source) for r in rows] == [(ARISAN, "workflow"), (ARISAN, "webhook")]
