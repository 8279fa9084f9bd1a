"""The helpdesk in a real browser: a reporter writes #request on the sandbox, the ticket
appears in the tickets page, the user assigns it to a field officer with a note, and the
reporter's notification shows in the sandbox chat."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from flask import g
from playwright.sync_api import expect

from server import sandbox_controls, sessions
from server.auth.principal import Principal
from server.models import Workflow, db
from server.tickets import people, staff
from server.workflows import store
from tests.server.conftest import wait_for

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
REPORTER = "6281234567890"


def _helpdesk_workflows(app, tmp_path, monkeypatch) -> None:
    """The shipped helpdesk workflows, read from a copy of their folder and enabled."""
    folder = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS / "helpdesk", folder / "helpdesk")
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOWS_DIR", str(folder))
    report = store.reload()
    assert not report["errors"], report["errors"]
    db.session.execute(sa.update(Workflow).values(enabled=True))
    db.session.commit()


def _paired_sandbox(owner) -> sessions.WaSession:
    """A connected sandbox session of ``owner``, unpaced (tests are about what is sent)."""
    g.principal = Principal.for_user(owner)
    session = sessions.create(
        g.principal, label="Helpdesk", transport="sandbox", settings={"pacing": {"enabled": False}}
    )
    wait_for(
        lambda: db.session.get(sessions.WaSession, session.id).status == "qr", what="a QR code"
    )
    sandbox_controls.scan(db.session.get(sessions.WaSession, session.id), phone="6281100000001")
    wait_for(
        lambda: db.session.get(sessions.WaSession, session.id).status == "connected",
        what="connected",
    )
    return db.session.get(sessions.WaSession, session.id)


def test_assign_a_ticket_and_see_the_reporters_notification_in_the_sandbox_chat(
    page, log_in, app, make_user, tmp_path, monkeypatch
):
    user = log_in("operator")
    _helpdesk_workflows(app, tmp_path, monkeypatch)
    officer = make_user("field", username="siswanto", display_name="Siswanto")
    staff.save(officer, phone="0821-2460-3757", level="tbo")
    people.create(name="R Marta Dinata", phone=REPORTER, department="Teknik", unit="TIF IT")
    session = _paired_sandbox(user)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Helpdesk").click()
    expect(page.get_by_text("No tickets match.")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-live", "open")

    # The reporter writes on WhatsApp (the sandbox); the ticket appears by itself.
    sandbox_controls.say(
        session, sender=REPORTER, name="Marta", text="#request lampu kelas B201 mati"
    )
    row = page.locator("tr[data-ticket]")
    expect(row).to_have_count(1, timeout=20_000)
    expect(row).to_contain_text("lampu kelas B201 mati")
    expect(row).to_contain_text("R Marta Dinata")
    number = row.get_attribute("data-ticket")

    row.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    page.get_by_label("Assign to").select_option(label="Siswanto (TBO)")
    page.get_by_label("Instruction").fill("segera diperiksa")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text(f"{number} assigned to Siswanto")
    expect(page.locator("[data-ticket-status]")).to_have_text("assigned")
    expect(page.locator('[data-event="assigned"]')).to_contain_text("segera diperiksa")
    page.screenshot(path="/tmp/web2/ticket.png", full_page=True)

    # The reporter's chat in the sandbox: the helpdesk told them.
    page.get_by_role("link", name="The reporter's chat").click()
    expect(page.locator(".bubble.out", has_text="Nomor Tracking")).to_be_visible()
    told = page.locator(".bubble.out", has_text="sudah ditugaskan")
    expect(told).to_be_visible(timeout=20_000)
    expect(told).to_contain_text(number)
    expect(told).to_contain_text("Siswanto")
