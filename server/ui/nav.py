"""The dashboard's navigation: one list, filtered by what the user may open.

A feature with pages adds its entry with ``add`` when its blueprint is imported, e.g.::

    nav.add(NavItem("ui.workflows.index", lazy_gettext("Workflows"), "workflows:manage",
                    order=50, sections=("ui.workflows",)))
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import request
from flask_babel import lazy_gettext

from server.auth.principal import Principal


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object  # a lazy string: translated when shown
    permission: str | None = None  # None: any logged-in user
    order: int = 100
    sections: tuple[str, ...] = ()  # blueprints whose pages mark this entry current

    @property
    def current(self) -> bool:
        sections = self.sections or (self.endpoint.rsplit(".", 1)[0],)
        return request.blueprint in sections


NAV: list[NavItem] = []


def add(item: NavItem) -> None:
    NAV[:] = sorted([i for i in NAV if i.endpoint != item.endpoint] + [item], key=lambda i: i.order)


def visible(principal: Principal) -> list[NavItem]:
    return [item for item in NAV if item.permission is None or principal.can(item.permission)]


for _item in (
    NavItem("ui.overview.index", lazy_gettext("Overview"), None, 10),
    NavItem(
        "ui.sessions.index",
        lazy_gettext("Sessions"),
        "sessions:read",
        20,
        ("ui.sessions", "ui.chat"),
    ),
    NavItem("ui.outbox.index", lazy_gettext("Messages"), "sessions:read", 30),
    NavItem("ui.webhooks.index", lazy_gettext("Webhooks"), "webhooks:manage", 40),
    # Workflows (50) and the Helpdesk (60) add theirs: ui/pages/workflows.py, tickets.py.
    NavItem("ui.admin.users", lazy_gettext("Users"), "users:manage", 80, ("ui.admin",)),
    NavItem("ui.apikeys.index", lazy_gettext("API keys"), None, 90),
):
    add(_item)
