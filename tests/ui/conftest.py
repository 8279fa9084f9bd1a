"""Browser tests: headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against a real server on a free port, with the runtime on a thread, on both databases.

Playwright never downloads a browser here: it launches the system's Chromium.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
from werkzeug.serving import make_server
from werkzeug.wsgi import ClosingIterator

from server import event_stream
from tests.server.conftest import runtime, wait_for  # noqa: F401 - fixtures reused here

CHROMIUM = os.environ.get("KABAR_TEST_CHROMIUM", "/usr/bin/chromium")


class _Counted:
    """WSGI middleware keeping the requests under way, so the server is stopped only once
    every event stream (which holds a database connection while it lives) has ended."""

    def __init__(self, app):
        self.app, self.active, self.lock = app, {}, threading.Lock()

    def _done(self, key) -> None:
        with self.lock:
            self.active.pop(key, None)

    def __call__(self, environ, start_response):
        key = object()
        with self.lock:
            self.active[key] = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._done(key)
            raise
        return ClosingIterator(body, [lambda: self._done(key)])


@pytest.fixture
def live_server(app, runtime, monkeypatch):  # noqa: F811 - the imported fixture
    """The app served over HTTP on 127.0.0.1, in threads of this process."""
    monkeypatch.setitem(app.config["KABAR"], "EVENTS_STREAM_SECONDS", 30)
    # A stream learns its browser left when it next writes: let it write often.
    monkeypatch.setattr(event_stream, "KEEPALIVE_SECONDS", 0.5)
    counted = _Counted(app)
    server = make_server("127.0.0.1", 0, counted, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-web", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"

    # The page fixture closed the browser's tab first; wait for its requests to end.
    # (Other requests may linger in the dev server draining their socket: their app
    # context, and so their connection, is gone already.)
    def streams() -> list[str]:
        return [path for path in list(counted.active.values()) if path.startswith("/events")]

    deadline = time.monotonic() + 10
    while streams() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    assert not streams(), f"event streams outlived the test: {streams()}"


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def log_in(page, make_user):
    """log_in(group) -> the user, logged in through the login form."""

    def do(group: str = "operator"):
        user = make_user(group)
        page.goto("/")
        assert "/login" in page.url
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill("password123")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        return user

    return do
