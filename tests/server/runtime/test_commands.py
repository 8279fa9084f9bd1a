"""The web's wait for the runtime: short and configurable, a clear 503 with Retry-After
when the runtime is busy, and recent answers reused instead of asked again; each command
claimed once, stale ones expired, a crashed runtime's claimed ones run again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server import sessions
from server.auth import Principal
from server.models import RuntimeCommand, db, utcnow
from server.runtime import commands, heartbeat


@pytest.fixture
def busy_runtime(app, monkeypatch):
    """A runtime that holds its lease but answers nothing (busy with other work)."""
    assert heartbeat.acquire("busy-runtime")
    monkeypatch.setitem(app.config["KABAR"], "RUNTIME_WAIT", 0.2)


@pytest.fixture
def session(operator):
    return sessions.create(
        Principal.for_user(operator), label="s", transport="sandbox", auto_start=False
    )


def test_a_busy_runtime_answers_503_runtime_timeout_with_retry_after(
    client, operator_headers, session, busy_runtime
):
    response = client.post(
        f"/api/v1/sessions/{session.id}/contacts/check",
        headers=operator_headers,
        json={"phones": ["0812-1111-2222"]},
    )
    assert response.status_code == 503 and response.json["code"] == "runtime_timeout"
    assert response.headers["Retry-After"] == "1"
    # Nobody waits for it any more: the runtime drops it rather than do it late.
    assert commands.claim_pending() == []
    (command,) = db.session.scalars(sa.select(RuntimeCommand)).all()
    assert (command.status, command.error_code) == ("failed", "expired")


def test_a_down_runtime_says_when_to_retry(client, operator_headers, session):
    response = client.get(f"/api/v1/sessions/{session.id}/groups", headers=operator_headers)
    assert response.status_code == 503 and response.json["code"] == "runtime_down"
    assert int(response.headers["Retry-After"]) > 0


def _answered(session, phones: dict[str, bool], *, age_seconds: float = 0) -> None:
    """An is_on_whatsapp command the runtime answered ``age_seconds`` ago."""
    from datetime import timedelta

    db.session.add(
        RuntimeCommand(
            kind="is_on_whatsapp",
            session_id=session.id,
            status="done",
            payload={"phones": list(phones)},
            finished_at=utcnow() - timedelta(seconds=age_seconds),
            result=[
                {"query": p, "jid": f"{p}@s.whatsapp.net" if on else None, "registered": on}
                for p, on in phones.items()
            ],
        )
    )
    db.session.commit()


def test_recent_answers_are_reused_without_asking_the_runtime(
    client, operator_headers, session, busy_runtime
):
    _answered(session, {"6281211112222": True, "6281299990000": False})
    response = client.post(
        f"/api/v1/sessions/{session.id}/contacts/check",
        headers=operator_headers,
        json={"phones": ["0812-9999-0000", "0812-1111-2222"]},
    )
    assert response.status_code == 200, response.json
    assert [(r["phone"], r["registered"]) for r in response.json["results"]] == [
        ("6281299990000", False),
        ("6281211112222", True),
    ]
    assert (
        db.session.scalar(
            sa.select(sa.func.count(RuntimeCommand.id)).where(RuntimeCommand.status == "pending")
        )
        == 0
    )
    # A number not answered recently still needs the (busy) runtime.
    other = client.post(
        f"/api/v1/sessions/{session.id}/contacts/check",
        headers=operator_headers,
        json={"phones": ["0812-1111-2222", "0812-3333-4444"]},
    )
    assert other.status_code == 503
    (asked,) = db.session.scalars(
        sa.select(RuntimeCommand).where(RuntimeCommand.status != "done")
    ).all()
    assert asked.payload == {"phones": ["6281233334444"]}


def test_old_answers_are_asked_again(
    client, operator_headers, session, busy_runtime, app, monkeypatch
):
    _answered(session, {"6281211112222": True}, age_seconds=700)
    stale = client.post(
        f"/api/v1/sessions/{session.id}/contacts/check",
        headers=operator_headers,
        json={"phones": ["0812-1111-2222"]},
    )
    assert stale.status_code == 503
    _answered(session, {"6281211112222": True})
    monkeypatch.setitem(app.config["KABAR"], "REGISTERED_CACHE_SECONDS", 0)
    off = client.post(
        f"/api/v1/sessions/{session.id}/contacts/check",
        headers=operator_headers,
        json={"phones": ["0812-1111-2222"]},
    )
    assert off.status_code == 503


def test_commands_are_claimed_once_and_stale_ones_expire(app):
    first = commands.submit("groups", payload={})
    stale = commands.submit("groups", payload={}, expires_in=-1)
    claimed = commands.claim_pending()
    assert [c.id for c in claimed] == [first.id]
    assert commands.claim_pending() == []  # never handed out twice
    assert db.session.get(RuntimeCommand, stale.id).error_code == "expired"


def test_a_crashed_runtimes_claimed_commands_run_again(app):
    command = commands.submit("groups", payload={})
    commands.claim_pending()
    commands.requeue_interrupted(set())  # no host is alive: what the next leader does
    assert [c.id for c in commands.claim_pending()] == [command.id]
