"""Runtime hosts and the sessions they hold: leases with fencing tokens, in the database.

Any number of runtime processes (hosts) may run against one PostgreSQL database. Each
announces itself in ``runtime_hosts`` and beats there; each session is held by at most
one host through its lease (``lease_holder``, ``lease_until``), and every claim bumps
the session's ``lease_token``. Every write a host makes for a session (an event stored,
a message marked sending or sent) first checks that it still holds the lease with that
token (``fence``), in the same transaction: a host that lost its lease (it was cut off
from the database and another host took over) can never write for that session again.

Hosts claim sessions that want to run and that nobody holds (or whose holder stopped
renewing), up to an even share of the live hosts and their announced capacity, those
they held before first. A draining host gives all of its sessions back. SQLite runs one
host, which simply holds everything.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from server.models import RuntimeHeartbeat, RuntimeHost, WaSession, db, utcnow

LEADER_LEASE = "runtime"  # heartbeat.LEASE

# A lease not renewed for this long is free for another host. Hosts renew every beat
# (2 s); a host that could not renew for SELF_FENCE stops its sessions by itself, before
# anyone else may take them.
LEASE_TTL = timedelta(seconds=15)
SELF_FENCE = timedelta(seconds=10)
HOST_STALE = timedelta(seconds=15)


class LeaseLost(Exception):
    """This host no longer holds the session: the write must not happen."""


@dataclass(frozen=True)
class HostInfo:
    id: str
    hostname: str
    pid: int
    capacity: int
    draining: bool
    alive: bool
    leader: bool
    sessions: int
    started_at: datetime
    beat_at: datetime


def register(holder: str, *, capacity: int) -> None:
    now = utcnow()
    row = db.session.get(RuntimeHost, holder)
    if row is None:
        db.session.add(
            RuntimeHost(
                id=holder,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                capacity=capacity,
                draining=False,
                started_at=now,
                beat_at=now,
            )
        )
    else:
        row.beat_at, row.capacity = now, capacity
    db.session.commit()


def beat(holder: str) -> tuple[dict[str, int], bool]:
    """Renew this host and every lease it holds. Returns the sessions it holds (id ->
    token) as the database sees them, and whether the host is draining."""
    now = utcnow()
    db.session.execute(sa.update(RuntimeHost).where(RuntimeHost.id == holder).values(beat_at=now))
    db.session.execute(
        sa.update(WaSession)
        .where(WaSession.lease_holder == holder)
        .values(lease_until=now + LEASE_TTL)
    )
    held = dict(
        db.session.execute(
            sa.select(WaSession.id, WaSession.lease_token).where(WaSession.lease_holder == holder)
        ).all()
    )
    draining = bool(
        db.session.scalar(sa.select(RuntimeHost.draining).where(RuntimeHost.id == holder))
    )
    db.session.commit()
    return held, draining


def claim(holder: str, *, capacity: int, held: int, share: int | None = None) -> dict[str, int]:
    """Take unheld sessions that should run, up to this host's fair share (``share``: as
    the caller just counted it). Returns the newly claimed ones (id -> token)."""
    now = utcnow()
    room = min(capacity, fair_share() if share is None else share) - held
    if room <= 0:
        return {}
    free = sa.or_(WaSession.lease_holder.is_(None), WaSession.lease_until < now)
    hostname = socket.gethostname()
    candidates = (
        db.session.execute(
            sa.select(WaSession.id)
            .where(WaSession.desired_state == "running", WaSession.deleted_at.is_(None), free)
            # Where it ran before first (its device store may be local), then oldest first.
            .order_by(
                sa.case((WaSession.host.startswith(hostname + " "), 0), else_=1),
                WaSession.created_at,
            )
            .limit(room)
            # A row still locked by a host that froze inside a transaction is skipped, not
            # waited for (PostgreSQL; the server ends that transaction, see process.py).
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    claimed: dict[str, int] = {}
    for session_id in candidates:
        won = db.session.execute(
            sa.update(WaSession)
            .where(WaSession.id == session_id, free)
            .values(
                lease_holder=holder,
                lease_until=now + LEASE_TTL,
                lease_token=WaSession.lease_token + 1,
            )
        ).rowcount
        if won:
            claimed[session_id] = db.session.scalar(
                sa.select(WaSession.lease_token).where(WaSession.id == session_id)
            )
    db.session.commit()
    return claimed


def release(holder: str, session_id: str) -> None:
    """Give a session back (stopped, drained or rebalanced): free for others at once."""
    db.session.execute(
        sa.update(WaSession)
        .where(WaSession.id == session_id, WaSession.lease_holder == holder)
        .values(lease_holder=None, lease_until=None)
    )
    db.session.commit()


def release_host(holder: str) -> None:
    """A host stopping (or seen dead by its supervisor): its sessions are free now."""
    db.session.execute(
        sa.update(WaSession)
        .where(WaSession.lease_holder == holder)
        .values(lease_holder=None, lease_until=None)
    )
    db.session.execute(sa.delete(RuntimeHost).where(RuntimeHost.id == holder))
    db.session.commit()


def fence(session_id: str, holder: str, token: int | None) -> None:
    """In the caller's transaction: raise LeaseLost unless ``holder`` still holds the
    session with ``token`` (token None: unless no other host holds it). The no-op update
    locks the session's row until commit, so a claim by another host waits for this
    transaction, or this check sees its claim."""
    if token is None:
        mine = sa.or_(WaSession.lease_holder.is_(None), WaSession.lease_holder == holder)
    else:
        mine = sa.and_(WaSession.lease_holder == holder, WaSession.lease_token == token)
    held = db.session.execute(
        sa.update(WaSession)
        .where(WaSession.id == session_id, mine)
        .values(lease_token=WaSession.lease_token)
    ).rowcount
    if not held:
        raise LeaseLost(f"session {session_id} is no longer held by {holder}")


def surplus(holder: str, share: int | None = None) -> list[str]:
    """The sessions this host holds beyond its fair share (after another host joined),
    newest first. Only those that should run count: a session just stopped or deleted
    is the reconcile's to end (it says "stopped"), not a hand-over's."""
    share = fair_share() if share is None else share
    running = db.session.scalars(
        sa.select(WaSession.id)
        .where(
            WaSession.lease_holder == holder,
            WaSession.desired_state == "running",
            WaSession.deleted_at.is_(None),
        )
        .order_by(WaSession.created_at.desc())
    ).all()
    return running[: max(len(running) - share, 0)]


def fair_share() -> int:
    """Sessions that should run, divided evenly over the live hosts not draining."""
    alive = (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(RuntimeHost)
            .where(RuntimeHost.beat_at > utcnow() - HOST_STALE, RuntimeHost.draining.is_(False))
        )
        or 1
    )
    wanted = (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(WaSession)
            .where(WaSession.desired_state == "running", WaSession.deleted_at.is_(None))
        )
        or 0
    )
    return math.ceil(wanted / alive)


def hosts() -> list[HostInfo]:
    now = utcnow()
    counts = dict(
        db.session.execute(
            sa.select(WaSession.lease_holder, sa.func.count())
            .where(WaSession.lease_holder.is_not(None), WaSession.lease_until > now)
            .group_by(WaSession.lease_holder)
        ).all()
    )
    leader = db.session.scalar(
        sa.select(RuntimeHeartbeat.holder).where(
            RuntimeHeartbeat.name == LEADER_LEASE, RuntimeHeartbeat.beat_at > now - HOST_STALE
        )
    )
    return [
        HostInfo(
            id=h.id,
            hostname=h.hostname,
            pid=h.pid,
            capacity=h.capacity,
            draining=h.draining,
            alive=h.beat_at > now - HOST_STALE,
            leader=h.id == leader,
            sessions=counts.get(h.id, 0),
            started_at=h.started_at,
            beat_at=h.beat_at,
        )
        for h in db.session.scalars(sa.select(RuntimeHost).order_by(RuntimeHost.started_at))
    ]


def live_holders() -> set[str]:
    now = utcnow()
    return set(
        db.session.scalars(sa.select(RuntimeHost.id).where(RuntimeHost.beat_at > now - HOST_STALE))
    )


def drain(host_id: str) -> bool:
    done = db.session.execute(
        sa.update(RuntimeHost).where(RuntimeHost.id == host_id).values(draining=True)
    ).rowcount
    db.session.commit()
    return bool(done)
