"""Session leases between runtime hosts: each host claims its fair share, and hands over
only what it holds beyond that share of the sessions that should run."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server import sessions
from server.models import WaSession, db
from server.runtime import leases


def _sessions(make_user, count: int) -> list[str]:
    owner = make_user("operator")
    rows = [
        WaSession(label=f"s{i}", transport="sandbox", owner_id=owner.id, desired_state="running")
        for i in range(count)
    ]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


def test_one_host_claims_every_session_that_should_run_and_keeps_them(app, make_user):
    ids = _sessions(make_user, 3)
    leases.register("a", capacity=10)
    assert set(leases.claim("a", capacity=10, held=0)) == set(ids)
    assert leases.surplus("a") == []


def test_a_session_stopped_on_its_host_is_not_handed_over(app, make_user):
    """Stopping a session lowers the fair share; the host must not read that as holding
    too many and hand the stopped session over quietly (it would never say "stopped":
    the dashboard showed it connected for good)."""
    first, second = _sessions(make_user, 2)
    leases.register("a", capacity=10)
    leases.claim("a", capacity=10, held=0)
    sessions.stop(db.session.get(WaSession, first))
    assert leases.surplus("a") == []


def test_a_second_host_gets_half_and_the_first_hands_over_its_newest(app, make_user):
    ids = _sessions(make_user, 4)
    leases.register("a", capacity=10)
    leases.claim("a", capacity=10, held=0)
    leases.register("b", capacity=10)
    surplus = leases.surplus("a")
    assert len(surplus) == 2 and set(surplus) <= set(ids)
    for session_id in surplus:
        leases.release("a", session_id)
    assert set(leases.claim("b", capacity=10, held=0)) == set(surplus)
    assert leases.surplus("a") == leases.surplus("b") == []


def test_a_row_locked_by_a_frozen_host_is_skipped_not_waited_for(app, make_user):
    """A host stopped inside a transaction keeps its rows locked until the server ends
    it: the host taking over claims the others meanwhile instead of hanging."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    locked, free = _sessions(make_user, 2)
    leases.register("a", capacity=10)
    frozen = db.engine.connect()
    transaction = frozen.begin()
    frozen.execute(sa.text("SELECT id FROM wa_sessions WHERE id = :id FOR UPDATE"), {"id": locked})
    try:
        db.session.execute(sa.text("SET LOCAL lock_timeout = '2s'"))  # fail, not hang
        assert set(leases.claim("a", capacity=10, held=0)) == {free}
    finally:
        transaction.rollback()
        frozen.close()
    assert set(leases.claim("a", capacity=10, held=1)) == {locked}
