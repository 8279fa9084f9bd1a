"""WhatsApp sessions: the service behind the session API, the CLI and the runtime.

The web only writes intent (``desired_state``, commands); the runtime, which owns the
live transports, writes what happened (``record_status``).
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import segno
import sqlalchemy as sa
from flask import current_app

from server import eventlog
from server.auth import Principal, current_principal, scoped
from server.errors import Conflict, Forbidden, NotFound, ServiceUnavailable, ValidationFailed
from server.events import SessionStatus
from server.models import SessionStatusChange, WaSession, db, utcnow
from server.runtime import live, wakeup
from server.whatsapp.transport import PairingCode

TRANSPORTS = ("sandbox", "neonize")
# Settings only an admin may set or change: they make the runtime connect somewhere.
ADMIN_ONLY_SETTINGS = (("neonize", "store_url"),)


class NotPaired(Conflict):
    code = "session_not_paired"
    message = "The session is not paired with a phone yet; scan its QR code first."


# Statuses after which the runtime stops trying until someone starts the session again.
TERMINAL = {"logged_out", "banned", "failed", "stopped", "deleted"}


def store_dir(session_id: str) -> Path:
    """Where a session's WhatsApp device store lives (removed when the session is)."""
    return Path(current_app.instance_path) / "sessions" / session_id


def visible():
    """The sessions the caller may see: their own (admins: all), and for an API key bound
    to one session, that session only."""
    query = scoped(WaSession).where(WaSession.deleted_at.is_(None))
    key = current_principal().api_key
    if key is not None and key.session_id is not None:
        query = query.where(WaSession.id == key.session_id)
    return query


def get(session_id: str) -> WaSession:
    """The session if the caller may see it; another tenant's answers 404."""
    row = db.session.scalar(visible().where(WaSession.id == session_id))
    if row is None:
        raise NotFound(f"No session with id {session_id!r}.", code="session_not_found")
    return row


def create(
    principal: Principal,
    *,
    label: str,
    transport: str,
    auto_start: bool = True,
    settings: dict | None = None,
) -> WaSession:
    if transport not in TRANSPORTS:
        raise ValidationFailed(errors={"transport": [f"Use one of: {', '.join(TRANSPORTS)}."]})
    _check_settings(settings, principal)
    session = WaSession(
        owner_id=principal.user.id,
        label=label,
        transport=transport,
        auto_start=auto_start,
        settings=settings or {},
        desired_state="running" if auto_start else "stopped",
    )
    db.session.add(session)
    db.session.flush()
    _log_status(session, SessionStatus(status="created", reason="created"))
    db.session.commit()
    wakeup.notify()
    return session


def _check_settings(
    settings: dict | None, principal: Principal | None, current: dict | None = None
) -> None:
    """422 for pacing values that are wrong; 403 when someone who is not an admin sets
    or changes an admin-only setting (keeping the value an admin set is fine)."""
    from server.outbox.pacing import Pacing

    Pacing.from_settings(settings)  # raises 422 with what is wrong
    if principal is None or principal.is_admin:
        return
    for section, key in ADMIN_ONLY_SETTINGS:
        new, old = _setting(settings, section, key), _setting(current, section, key)
        if new is not None and new != old:
            raise Forbidden(
                f"Only an admin may set settings.{section}.{key}: it makes the runtime "
                "connect to that server. Ask an admin to set it, or leave it out.",
                code="admin_only_setting",
            )


def _setting(settings: dict | None, section: str, key: str):
    part = (settings or {}).get(section)
    return part.get(key) if isinstance(part, dict) else None


def update(session: WaSession, *, principal: Principal | None = None, **fields) -> WaSession:
    """Change label, auto_start or settings. ``principal``: who asks (the API and the
    dashboard pass the caller; admin-only settings are checked against it)."""
    if "settings" in fields:
        _check_settings(fields["settings"], principal, session.settings)
    for name in ("label", "auto_start", "settings"):
        if name in fields:
            setattr(session, name, fields[name])
    db.session.commit()
    return session


def start(session: WaSession) -> WaSession:
    session.desired_state = "running"
    db.session.commit()
    wakeup.notify()
    return session


def stop(session: WaSession) -> WaSession:
    session.desired_state = "stopped"
    db.session.commit()
    wakeup.notify()
    return session


def restart(session: WaSession) -> WaSession:
    session.desired_state = "running"
    db.session.commit()
    live.restart(session.id)
    return session


def logout(session: WaSession) -> None:
    """Unlink the device from the phone. Needs the runtime and a connected session."""
    live.logout(session.id)


def delete(session: WaSession) -> None:
    """Hide the session now; the runtime stops it and removes its store and rows."""
    session.deleted_at = utcnow()
    session.desired_state = "deleted"
    db.session.commit()
    wakeup.notify()


# Statuses on the way to a QR code while the session should run.
STARTING = {"created", "connecting", "reconnecting", "disconnected"}
QR_WAIT_SECONDS = 5.0


def qr(session: WaSession, *, wait: float | None = None) -> WaSession:
    """The session, once it shows a QR code. A session on its way to one (just created or
    started) is waited for up to ``wait`` seconds; still starting then, the answer is 503
    with ``Retry-After``, not a refusal."""
    from server.runtime import heartbeat

    deadline = time.monotonic() + (QR_WAIT_SECONDS if wait is None else wait)
    while _starting(session) and time.monotonic() < deadline and heartbeat.state().alive:
        time.sleep(0.1)
        db.session.refresh(session)
    if _starting(session):
        if not heartbeat.state().alive:
            raise ServiceUnavailable(
                "The session waits for the runtime process, which is not running, to "
                "show its QR code. It restarts by itself under `kabar run`; check its log "
                "if this persists.",
                code="runtime_down",
                headers={"Retry-After": "5"},
            )
        raise ServiceUnavailable(
            f"The session is starting (status {session.status}); its QR code comes in a "
            "moment. Ask again in a second.",
            code="session_starting",
            headers={"Retry-After": "1"},
        )
    if session.status != "qr" or not session.qr:
        hint = {
            "connected": "It is already paired and connected.",
            "stopped": "Start it first: POST .../start.",
            "created": "It is not started; start it (POST .../start), then ask again.",
        }
        raise Conflict(
            f"The session has no QR code to show now (status {session.status}). "
            + hint.get(session.status, "Wait for status qr."),
            code="no_qr",
        )
    return session


def _starting(session: WaSession) -> bool:
    return session.desired_state == "running" and session.status in STARTING and not session.qr


def qr_png(code: str) -> bytes:
    """The QR code as a PNG image, as a phone's camera reads it."""
    buffer = io.BytesIO()
    segno.make(code, error="l").save(buffer, kind="png", scale=8, border=2)
    return buffer.getvalue()


def pair_code(session: WaSession, phone: str) -> PairingCode:
    """Ask WhatsApp for a code to link by phone number; it works until ``expires_at``."""
    return live.pair_code(session.id, phone)


# --- the runtime's side ---------------------------------------------------------------


def _log_status(session: WaSession, event: SessionStatus) -> None:
    db.session.add(
        SessionStatusChange(session_id=session.id, status=event.status, reason=event.reason[:255])
    )
    eventlog.record(event, session)


def record_status(session: WaSession, event: SessionStatus, *, halt: bool = False) -> None:
    """Write a status the runtime saw; log the change and emit it as an event.

    ``halt``: the transport itself ended the session (logged out, banned, failed, QR
    expired), so the runtime must not start it again until a person does.
    """
    now = utcnow()
    changed = (
        event.status != session.status
        or event.reason != session.status_reason
        or event.qr != session.qr
    )
    session.status = event.status
    session.status_reason = event.reason[:255]
    session.status_changed_at = now
    session.last_seen_at = now
    session.qr = event.qr if event.status == "qr" else None
    session.qr_expires_at = event.qr_expires_at if event.status in ("qr", "pairing_code") else None
    session.pair_code = event.pair_code if event.status == "pairing_code" else None
    if event.status == "connected":
        session.jid = event.jid or session.jid
        session.phone = event.phone or session.phone
        session.push_name = event.push_name or session.push_name
        session.last_error = None
    if event.status in ("failed", "banned", "disconnected") and event.reason:
        session.last_error = event.reason[:512]
    if event.status == "logged_out":
        session.jid = session.phone = session.push_name = None
    if halt and session.desired_state == "running":
        session.desired_state = "stopped"
    if changed:
        _log_status(session, event)
    db.session.commit()


def remove_store(session_id: str) -> None:
    shutil.rmtree(store_dir(session_id), ignore_errors=True)


def purge(session: WaSession) -> None:
    """Delete a session's rows for good (the runtime calls this after stopping it)."""
    remove_store(session.id)
    eventlog.record(SessionStatus(status="deleted", reason="deleted"), session)
    db.session.flush()
    db.session.execute(sa.delete(WaSession).where(WaSession.id == session.id))
    db.session.commit()
