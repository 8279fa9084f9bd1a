"""Fixtures for the dashboard's page tests: logged-in browsers (test clients)."""

from __future__ import annotations

import pytest

from tests.server.conftest import operator, runtime, wait_for  # noqa: F401 - reused here
from tests.server.ui.client import dashboard_client


@pytest.fixture
def browser_for(app):
    """browser_for(user) -> a DashboardClient logged in as ``user`` (None: anonymous)."""
    return lambda user=None: dashboard_client(app, user)


@pytest.fixture
def admin_browser(browser_for, make_user):
    return browser_for(make_user("admin"))


@pytest.fixture
def operator_browser(browser_for, operator):  # noqa: F811 - the imported fixture
    return browser_for(operator)


def flashes(response) -> str:
    """The text of the page's flash messages (after following a redirect)."""
    import re

    return " ".join(
        re.findall(r'class="flash flash-\w+"[^>]*>([^<]*)<', response.get_data(as_text=True))
    )
