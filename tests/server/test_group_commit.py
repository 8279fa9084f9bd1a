"""Group commit: many threads' rows stored together, each told what became of its own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from server.group_commit import GroupCommit

metadata = sa.MetaData()
ROWS = sa.Table(
    "rows",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(16), unique=True),
    sa.Column("text", sa.String(16), nullable=False),
)


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _stored(engine):
    with engine.connect() as connection:
        return sorted(connection.execute(sa.select(ROWS.c.key, ROWS.c.text)).all())


def test_every_thread_gets_its_row_stored_and_a_taken_key_is_reported(engine):
    commits = []
    writer = GroupCommit(engine, after_commit=lambda connection: commits.append(1))
    with ThreadPoolExecutor(16) as pool:
        inserted = list(
            pool.map(
                lambda i: writer.insert(ROWS, {"key": f"k{i % 50}", "text": str(i)}), range(100)
            )
        )
    assert inserted.count(True) == 50  # the second of each key was refused, not stored
    assert [key for key, _ in _stored(engine)] == sorted(f"k{i}" for i in range(50))
    assert len(commits) <= 100  # at most one commit per batch, never one per failure


def test_a_bad_row_fails_alone(engine):
    writer = GroupCommit(engine)
    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(writer.insert, ROWS, {"key": f"k{i}", "text": (None if i == 3 else "ok")})
            for i in range(8)
        ]
    for i, future in enumerate(futures):
        if i == 3:
            with pytest.raises(sa.exc.IntegrityError):
                future.result()
        else:
            assert future.result() is True
    assert len(_stored(engine)) == 7


def test_a_rest_send_raced_with_its_own_key_is_stored_once(client, operator_headers):
    from server.models import OutboxMessage, db

    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "race", "transport": "sandbox"}
    )
    sid = created.json["id"]
    headers = {**operator_headers, "Idempotency-Key": "same"}

    def send(_):
        return client.post(
            f"/api/v1/sessions/{sid}/messages",
            headers=headers,
            json={"to": "081211110001", "text": "once"},
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 5
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.session_id == sid)
        )
        == 1
    )
