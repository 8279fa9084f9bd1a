"""A test client for the dashboard: a cookie login through the form, CSRF tokens taken
from the pages like a browser does, and each request in an app context of its own.

The last matters because the test's own app context would otherwise be shared by every
request (Flask reuses it), and with it ``g``, where Flask-WTF caches the CSRF token of
whichever browser asked first."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from server.extensions import limiter

TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


class DashboardClient(FlaskClient):
    token: str | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"  # assertions read English

    def open(self, *args, **kwargs):
        with self.application.app_context():
            response = super().open(*args, **kwargs)
            if response.mimetype == "text/html":
                found = TOKEN.search(response.get_data(as_text=True))
                if found:
                    self.token = found.group(1)
            return response

    def refresh_token(self) -> str:
        self.get("/login")
        return self.token

    def submit(self, url: str, data: dict | None = None, **kwargs):
        """POST a form with this browser's CSRF token (as the page's form would)."""
        if self.token is None:
            self.refresh_token()
        return self.post(url, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def log_in(self, username: str, password: str = "password123"):
        self.refresh_token()
        response = self.submit("/login", {"username": username, "password": password})
        self.refresh_token()  # a login starts a new cookie, with a new token
        return response


def dashboard_client(app, user=None) -> DashboardClient:
    client = DashboardClient(app, app.response_class, use_cookies=True)
    if user is not None:
        limiter.reset()  # tests log in far more often than the login limit allows
        response = client.log_in(user.username)
        assert response.status_code == 303, response.get_data(as_text=True)
    return client
