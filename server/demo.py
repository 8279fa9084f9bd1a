"""`kabar demo`: a helpdesk to talk to in a minute, on the sandbox (never WhatsApp).

``prepare()`` makes, once (running it again changes nothing): a sandbox session owned by
the first admin, the shipped helpdesk workflows enabled, a reporter in the people
directory and a field officer (TBO) with a staff profile. ``pair_when_ready()`` scans the
session's QR code with the sandbox phone as soon as the runtime shows one.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from server import sandbox_controls, sessions
from server.auth import accounts
from server.auth.permissions import ADMIN_GROUP
from server.auth.principal import Principal
from server.models import Group, User, WaSession, Workflow, db
from server.tickets import people, staff
from server.workflows import store

log = logging.getLogger(__name__)

SESSION_LABEL = "Demo helpdesk"
SESSION_PHONE = "6281100000001"
REPORTER = ("0812-1111-2222", "Budi Santoso", "Teknik Informatika", "TIF IT")
OFFICER = ("tbo-demo", "Siswanto", "0813-3333-4444")


@dataclass(frozen=True)
class Demo:
    session_id: str
    admin: str
    reporter_phone: str
    officer_phone: str
    officer_id: int
    workflows: tuple[str, ...]


def instance_beside(usual: Path) -> Path:
    """The demo's own instance folder: beside the usual one, so that it never changes it."""
    return usual.with_name(usual.name + "-demo")


def prepare() -> Demo:
    admin = db.session.scalar(
        sa.select(User)
        .join(Group)
        .where(Group.name == ADMIN_GROUP, User.blocked_at.is_(None))
        .order_by(User.id)
    )
    if admin is None:
        raise RuntimeError("no admin yet: run `kabar init` first")
    session = db.session.scalar(
        sa.select(WaSession).where(WaSession.label == SESSION_LABEL, WaSession.deleted_at.is_(None))
    )
    if session is None:
        session = sessions.create(
            Principal.for_user(admin), label=SESSION_LABEL, transport="sandbox", auto_start=True
        )
    store.reload()
    names = tuple(
        db.session.scalars(
            sa.select(Workflow.name).where(Workflow.name.like("helpdesk-%")).order_by(Workflow.name)
        )
    )
    db.session.execute(sa.update(Workflow).where(Workflow.name.in_(names)).values(enabled=True))
    db.session.commit()
    phone, name, department, unit = REPORTER
    if people.find_by_phone(people.normalise(phone)) is None:
        people.create(name=name, phone=phone, department=department, unit=unit)
    username, display, officer_phone = OFFICER
    officer = accounts.find_user(username)
    if officer is None:
        officer = accounts.create_user(
            username=username,
            password=secrets.token_urlsafe(16),
            group="field",
            display_name=display,
        )
    if staff.find_by_phone(staff.normalise(officer_phone)) is None:
        staff.save(officer, phone=officer_phone, level="tbo")
    return Demo(
        session_id=session.id,
        admin=admin.username,
        reporter_phone=phone,
        officer_phone=officer_phone,
        officer_id=officer.id,
        workflows=names,
    )


def pair_when_ready(app: Flask, session_id: str, *, timeout: float = 120.0) -> threading.Thread:
    """Scan the demo session's QR code once the runtime shows it (a thread)."""

    def pair() -> None:
        with app.app_context():
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                session = db.session.get(WaSession, session_id, populate_existing=True)
                status = session.status if session else None
                db.session.rollback()
                if status == "connected":
                    return
                if status == "qr":
                    try:
                        sandbox_controls.scan(session, phone=SESSION_PHONE, push_name="Helpdesk")
                        return
                    except Exception:  # the QR rotated; try again
                        log.info("demo: scan not taken yet; trying again", exc_info=True)
                time.sleep(0.5)
            log.warning("demo: the sandbox session did not show a QR code in time")

    thread = threading.Thread(target=pair, name="kabar-demo-pair", daemon=True)
    thread.start()
    return thread


def instructions(demo: Demo, base_url: str, *, instance: Path | None = None) -> str:
    sid, reporter, officer = demo.session_id, demo.reporter_phone, demo.officer_phone
    say = f"kabar sandbox say --session {sid}"
    where = (
        ""
        if instance is None
        else f"""
It runs on its own instance, {instance}: your usual instance is untouched. Delete the
folder to forget the demo. In the other terminal, point kabar at it first:
  export KABAR_INSTANCE_PATH={instance}
"""
    )
    return f"""
Kabar demo: a campus helpdesk on the sandbox session {sid} ("{SESSION_LABEL}").
Workflows enabled: {", ".join(demo.workflows)}. Nothing here reaches WhatsApp.
{where}
In another terminal (`.venv/bin/kabar` if the venv is not active), be the reporter:
  {say} --from {reporter} --name "Budi Santoso" "#request lampu kelas B201 mati"
and watch what the helpdesk answers:
  kabar sandbox inbox --session {sid} --follow

Assign the ticket (number from the answer, e.g. BRT{time.strftime("%y%m")}001) to the
field officer in the dashboard: log in at {base_url} as {demo.admin}, open Helpdesk, the
ticket, choose Siswanto under "Assign to" and Assign. (The session's Chat page shows the
conversation, and can speak as a contact too.) Or with the API ({base_url}/docs):
  curl -X POST {base_url}/api/v1/tickets/NUMBER/assign -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"assignee": {demo.officer_id}, "note": "segera"}}'
Then be the field officer:
  {say} --from {officer} --name Siswanto "#job"
  {say} --from {officer} --name Siswanto "#start NUMBER"
  {say} --from {officer} --name Siswanto "#report NUMBER lampu sudah diganti"
  {say} --from {officer} --name Siswanto "#finish NUMBER"
and the reporter again:
  {say} --from {reporter} "cek NUMBER"
  {say} --from {reporter} "track NUMBER"
  {say} --from {reporter} "#selesai NUMBER"
"""
