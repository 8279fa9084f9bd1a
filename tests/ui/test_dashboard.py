"""What a new user noticed in the dashboard (issue 14, item 9), in a real browser: actions
and pairing that follow the session's state, statuses in the user's language, names
instead of ids, ticket steps the status allows, WhatsApp formatting, a chat read while it
is open, graph labels that are not hidden, the API docs, the icon."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from flask import g
from playwright.sync_api import expect

from server import sandbox_controls, sessions
from server.auth.principal import Principal
from server.models import ChatState, WaSession, db
from server.tickets import lifecycle
from server.tickets.actors import Actor
from server.workflows import store
from tests.ui.test_browser import _create_sandbox_session

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def _options(select) -> list[str]:
    return select.locator("option").evaluate_all("els => els.map(e => e.textContent.trim())")


def _actions(page) -> list[str]:
    return [name.strip() for name in page.locator(".actions button").all_inner_texts()]


def test_a_session_page_offers_what_its_state_allows_in_the_users_language(page, log_in):
    user = log_in("admin")
    session_id = _create_sandbox_session(page, "Front desk")

    status = page.locator("[data-status]")
    expect(status).to_have_attribute("data-status", "qr", timeout=15_000)
    expect(status).to_have_text("waiting for a scan")
    expect(page.locator(".qr figcaption")).to_contain_text("sandbox phone")
    expect(page.locator(".qr figcaption")).not_to_contain_text("Scan with WhatsApp")
    assert _actions(page) == ["Stop", "Restart", "Delete"]
    expect(page.get_by_role("heading", name="Pair")).to_be_visible()

    page.get_by_role("button", name="Scan the QR code").click()
    expect(status).to_have_attribute("data-status", "connected", timeout=15_000)
    expect(page.locator(".actions button", has_text="Log out of WhatsApp")).to_be_visible()
    assert _actions(page) == ["Stop", "Restart", "Log out of WhatsApp", "Delete"]
    page.reload()
    expect(page.get_by_role("heading", name="Pair")).to_have_count(0)

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator("[data-status]")).to_have_attribute(
        "data-status", "stopped", timeout=15_000
    )
    assert _actions(page) == ["Start", "Delete"]

    # In Indonesian: the statuses too, and the owner by name.
    page.get_by_label("Language").select_option("id")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("[data-status]")).to_have_text("dihentikan")
    page.goto("/sessions")
    row = page.locator("tr", has_text="Front desk")
    expect(row.locator("[data-status]")).to_have_text("dihentikan")
    expect(row).to_contain_text(user.username)
    assert db.session.get(WaSession, session_id) is not None

    # The API's documentation is one click away, with a filter; the pages have an icon.
    expect(page.locator("link[rel=icon]")).to_have_attribute("type", "image/svg+xml")
    icon = page.request.get(page.locator("link[rel=icon]").get_attribute("href"))
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
    assert page.request.get("/favicon.ico").ok
    page.get_by_role("link", name="Dokumentasi API").click()
    expect(page.locator(".operation-filter-input")).to_be_visible(timeout=15_000)


def test_a_chat_shows_names_formatting_and_is_read_while_open(page, log_in):
    user = log_in("operator")
    session_id = _create_sandbox_session(page, "Chat")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "qr", timeout=15_000)
    page.get_by_role("button", name="Scan the QR code").click()
    expect(page.locator("[data-status]")).to_have_attribute(
        "data-status", "connected", timeout=15_000
    )
    g.principal = Principal.for_user(user)
    sandbox_controls.say(
        sessions.get(session_id),
        sender="0812-3456-789",
        name="Budi",
        text="*Penting*: lampu _kelas_ ~mati~ ```B201```",
    )

    page.get_by_role("link", name="Chat", exact=True).first.click()
    chats = page.locator(".chat-list")
    expect(chats.locator(".badge.unread")).to_have_count(1)
    chats.get_by_role("link", name="Budi").click()
    expect(page.locator("#conv-h")).to_contain_text("Budi")
    expect(page.locator("#conv-h")).to_contain_text("+628123456789")
    bubble = page.locator(".bubble.in").last
    expect(bubble.locator("strong")).to_have_text("Penting")
    expect(bubble.locator("em")).to_have_text("kelas")
    expect(bubble.locator("s")).to_have_text("mati")
    expect(bubble.locator("code")).to_have_text("B201")
    # Open, so read: the badge goes, and stays gone (the gateway marked it read).
    expect(chats.locator(".badge.unread")).to_have_count(0, timeout=15_000)
    state = db.session.scalar(sa.select(ChatState).where(ChatState.session_id == session_id))
    assert state is not None and state.last_read_seq
    db.session.rollback()
    sandbox_controls.say(sessions.get(session_id), sender="0812-3456-789", name="Budi", text="lagi")
    expect(page.locator(".bubble.in", has_text="lagi")).to_be_visible()
    expect(chats.locator(".badge.unread")).to_have_count(0, timeout=15_000)
    page.reload()
    expect(page.locator(".chat-list .badge.unread")).to_have_count(0)


def test_ticket_steps_follow_the_status_and_graph_labels_are_not_hidden(
    page, log_in, app, tmp_path, monkeypatch
):
    log_in("admin")
    ticket = lifecycle.create(
        "proyektor mati",
        Actor.system("test"),
        reporter_phone="6281234567890",
        reporter_name="Marta",
    )
    page.goto(f"/helpdesk/tickets/{ticket.number}")
    step = page.get_by_label("Step")
    assert _options(step) == ["Hold (pending)"]
    step.select_option(label="Hold (pending)")
    page.get_by_role("form", name="Change the status").get_by_role("button").click()
    expect(page.locator("[data-ticket-status]")).to_have_text("pending")
    assert _options(page.get_by_label("Step")) == [
        "Start (in progress)",
        "Finish (done)",
        "Reopen (new)",
    ]

    # The helpdesk-request graph: every edge label whole, over no box.
    shutil.copytree(WORKFLOWS / "helpdesk", tmp_path / "helpdesk")
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOWS_DIR", str(tmp_path))
    store.reload()
    for name in ("helpdesk-request", "helpdesk-officer", "helpdesk-status"):
        page.goto(f"/workflows/{name}")
        labels = page.locator("[data-edge-label]")
        expect(labels.first).to_be_visible()
        boxes = [
            page.locator(".node rect").nth(i).bounding_box()
            for i in range(page.locator(".node rect").count())
        ]
        svg = page.locator("svg.graph").bounding_box()
        for i in range(labels.count()):
            label = labels.nth(i).bounding_box()
            text = labels.nth(i).text_content()
            assert (
                svg["x"] <= label["x"] and label["x"] + label["width"] <= svg["x"] + svg["width"]
            ), f"{name}: {text!r} is cut"
            for box in boxes:
                apart = (
                    label["x"] + label["width"] <= box["x"]
                    or box["x"] + box["width"] <= label["x"]
                    or label["y"] + label["height"] <= box["y"]
                    or box["y"] + box["height"] <= label["y"]
                )
                assert apart, f"{name}: {text!r} is under a box"
