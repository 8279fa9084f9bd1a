"""The leader lease and heartbeat.

Any number of runtime hosts may run (``leases.py`` spreads the sessions over them); one
of them leads: it takes this lease row when it is free or its holder has stopped
beating, renews it every ``BEAT_SECONDS``, and runs the work that is not per session
(webhook delivery, workflow runs and timers, schedules). The web reads the row to tell
whether the runtime is up (``/api/v1/ready``, each session's status).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.models import RuntimeHeartbeat, RuntimeHost, WaSession, db, utcnow

LEASE = "runtime"
BEAT_SECONDS = 2.0
# A runtime that has not beaten for this long is down, and its lease may be taken.
STALE_AFTER = timedelta(seconds=10)


@dataclass(frozen=True)
class RuntimeState:
    alive: bool
    pid: int | None = None
    beat_at: datetime | None = None
    started_at: datetime | None = None


def state() -> RuntimeState:
    row = db.session.get(RuntimeHeartbeat, LEASE)
    if row is None:
        return RuntimeState(alive=False)
    return RuntimeState(
        alive=utcnow() - row.beat_at < STALE_AFTER,
        pid=row.pid,
        beat_at=row.beat_at,
        started_at=row.started_at,
    )


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def acquire(holder: str) -> bool:
    """Take the lease if free or stale. True if this holder has it now."""
    now = utcnow()
    taken = db.session.execute(
        sa.update(RuntimeHeartbeat)
        .where(
            RuntimeHeartbeat.name == LEASE,
            sa.or_(RuntimeHeartbeat.holder == holder, RuntimeHeartbeat.beat_at < now - STALE_AFTER),
        )
        .values(holder=holder, pid=os.getpid(), started_at=now, beat_at=now)
    ).rowcount
    if not taken:
        db.session.add(
            RuntimeHeartbeat(
                name=LEASE, holder=holder, pid=os.getpid(), started_at=now, beat_at=now
            )
        )
        try:
            db.session.commit()
            return True
        except IntegrityError:  # someone else holds a live lease
            db.session.rollback()
            return False
    db.session.commit()
    return True


def beat(holder: str) -> bool:
    """Renew the lease. False if another runtime took it (then stop at once)."""
    renewed = db.session.execute(
        sa.update(RuntimeHeartbeat)
        .where(RuntimeHeartbeat.name == LEASE, RuntimeHeartbeat.holder == holder)
        .values(beat_at=utcnow())
    ).rowcount
    db.session.commit()
    return bool(renewed)


def release(holder: str) -> None:
    db.session.execute(
        sa.delete(RuntimeHeartbeat).where(
            RuntimeHeartbeat.name == LEASE, RuntimeHeartbeat.holder == holder
        )
    )
    db.session.commit()


def release_pid(pid: int) -> None:
    """Free the leases of a runtime this machine saw die (the leader lease, its host row
    and its sessions), so its successor need not wait for them to expire."""
    prefix = f"{socket.gethostname()}:{pid}:"
    db.session.execute(
        sa.delete(RuntimeHeartbeat).where(
            RuntimeHeartbeat.name == LEASE,
            RuntimeHeartbeat.pid == pid,
            RuntimeHeartbeat.holder.startswith(prefix),
        )
    )
    db.session.execute(
        sa.update(WaSession)
        .where(WaSession.lease_holder.startswith(prefix))
        .values(lease_holder=None, lease_until=None)
    )
    db.session.execute(sa.delete(RuntimeHost).where(RuntimeHost.id.startswith(prefix)))
    db.session.commit()
