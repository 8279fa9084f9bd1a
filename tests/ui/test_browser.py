"""The dashboard in a real browser: what a person does, end to end."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sqlalchemy as sa
from playwright.sync_api import expect

from server.models import WaSession, db


def _create_sandbox_session(page, label: str = "Helpdesk") -> str:
    page.get_by_role("link", name="Sessions", exact=True).click()
    page.get_by_label("Label").fill(label)
    page.get_by_label("Transport").select_option("sandbox")
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(label)
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def test_log_in_pair_a_sandbox_session_chat_both_ways(page, log_in):
    log_in("operator")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    session_id = _create_sandbox_session(page)

    # The QR appears by itself (the event stream refreshes the status), and rotates.
    qr = page.get_by_role("img", name="QR code to scan")
    expect(qr).to_be_visible()
    first = qr.get_attribute("data-qr")
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "qr")

    page.get_by_role("button", name="Scan the QR code").click()
    expect(page.locator("[data-status]")).to_have_text("connected", timeout=15_000)
    expect(page.locator("[data-status]")).to_have_attribute("data-status", "connected")
    expect(page.get_by_role("img", name="QR code to scan")).to_have_count(0)
    assert first and first.startswith("2@sandbox")

    # Send a message from the chat page; it shows in the history and gets receipts.
    page.get_by_role("link", name="Chat", exact=True).first.click()
    page.get_by_label("To", exact=True).fill("0812-3456-789")
    page.get_by_label("Text (the caption of a file)").fill("Halo Budi, apa kabar?")
    page.get_by_role("button", name="Send", exact=True).click()
    bubble = page.locator(".bubble.out", has_text="Halo Budi, apa kabar?")
    expect(bubble).to_be_visible(timeout=15_000)
    expect(bubble.locator(".msg-status")).to_have_text("read", timeout=15_000)

    # A virtual contact answers: the message appears without reloading the page.
    page.get_by_label("The contact's name").fill("Budi")
    page.get_by_label("Message", exact=True).fill("Baik, terima kasih!")
    page.get_by_role("button", name="Say it").click()
    expect(page.locator(".bubble.in", has_text="Baik, terima kasih!")).to_be_visible()
    expect(page.locator(".chat-list")).to_contain_text("Budi")

    # The contact speaks again through the API's service while the page only listens.
    from flask import g

    from server import sandbox_controls, sessions
    from server.auth.principal import Principal

    row = db.session.scalar(sa.select(WaSession).where(WaSession.id == session_id))
    from server.models import User

    g.principal = Principal.for_user(db.session.get(User, row.owner_id))
    sandbox_controls.say(
        sessions.get(session_id), sender="0812-3456-789", text="Ada yang bisa dibantu?"
    )
    expect(page.locator(".bubble.in", has_text="Ada yang bisa dibantu?")).to_be_visible()


def test_overview_counts_today_and_shows_the_runtime(page, log_in):
    log_in("admin")
    _create_sandbox_session(page, "Counter")
    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Runtime")).to_be_visible()
    expect(page.locator(".card-runtime .badge")).to_have_text("up")
    expect(page.locator(".card-sessions")).to_contain_text("Counter")
    expect(page.locator("[data-stat=sent]")).to_have_text("0")


class _Attacker(BaseHTTPRequestHandler):
    """A page on another port (the same site, so the browser sends its cookies) whose
    form posts to Kabar without the CSRF token."""

    target = ""

    def do_GET(self):
        body = (
            f'<form method="post" action="{self.target}/sessions">'
            '<input name="label" value="forged"><input name="transport" value="sandbox">'
            "<button>Win a prize</button></form>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def test_a_forged_post_from_another_page_is_refused(page, log_in, live_server):
    log_in("operator")
    _Attacker.target = live_server
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{attacker.server_port}/")
        with page.expect_navigation():
            page.get_by_role("button", name="Win a prize").click()
        assert page.url.startswith(live_server)
        expect(page.get_by_role("alert")).to_contain_text("did not come from this site")
    finally:
        attacker.shutdown()
        attacker.server_close()
    db.session.expire_all()
    assert db.session.scalar(sa.select(WaSession).where(WaSession.label == "forged")) is None
    # The person's own form still works.
    page.goto("/sessions")
    page.get_by_label("Label").fill("mine")
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("mine")


def test_switch_the_language_and_back(page, log_in):
    log_in("operator")
    page.get_by_label("Language").select_option("id")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html")).to_have_attribute("lang", "id")
    expect(page.get_by_role("heading", name="Ringkasan")).to_be_visible()
    expect(page.get_by_role("link", name="Sesi", exact=True)).to_be_visible()
    page.get_by_label("Bahasa").select_option("en")
    page.get_by_role("button", name="Ganti").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_log_in_and_move_around_by_keyboard(page, make_user):
    user = make_user("operator")
    page.goto("/login")
    expect(page.get_by_label("Username")).to_be_focused()  # autofocus
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    page.keyboard.type("password123")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.keyboard.press("Tab")  # the skip link comes first, then the navigation
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
