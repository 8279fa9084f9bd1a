"""The permission catalogue and the built-in groups.

A user belongs to one group; the group grants permissions by name. The ``admin``
group always holds every permission and sees every tenant's resources; its
permissions cannot be edited, so an administrator cannot lock themself out.
"""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "sessions:read": "See WhatsApp sessions, their status, chats and messages.",
    "sessions:manage": "Create, start, stop, pair, log out and delete WhatsApp sessions.",
    "messages:send": "Send messages and message actions through sessions.",
    "webhooks:manage": "Create, change, test and replay webhook endpoints.",
    "workflows:manage": "Upload, enable, disable and run workflows; see their runs.",
    "tickets:read": "See helpdesk tickets (field officers: their own assignments).",
    "tickets:assign": "Assign tickets, add progress and change their status.",
    "people:manage": "Manage the helpdesk people directory and imports.",
    "users:manage": "Create, change, block and delete users; edit groups.",
    "metrics:read": "Read the Prometheus metrics at /metrics.",
    "runtime:manage": "See the runtime hosts and the sessions they hold; drain a host.",
}

ADMIN_GROUP = "admin"

BUILTIN_GROUPS: dict[str, tuple[str, list[str]]] = {
    ADMIN_GROUP: ("Administrators: every permission, every tenant.", list(PERMISSIONS)),
    "operator": (
        "Operators: run their own sessions, messages, webhooks, workflows and the helpdesk.",
        [
            "sessions:read",
            "sessions:manage",
            "messages:send",
            "webhooks:manage",
            "workflows:manage",
            "tickets:read",
            "tickets:assign",
            "people:manage",
        ],
    ),
    "field": ("Field officers (TBO): see and work on their assigned tickets.", ["tickets:read"]),
    "api": (
        "Machine users: read their sessions and send messages.",
        ["sessions:read", "messages:send"],
    ),
}


def unknown(names: list[str]) -> list[str]:
    """The names in ``names`` that are not in the catalogue."""
    return [name for name in names if name not in PERMISSIONS]


def group_permissions(group_name: str, stored: list[str]) -> frozenset[str]:
    if group_name == ADMIN_GROUP:
        return frozenset(PERMISSIONS)
    return frozenset(p for p in stored if p in PERMISSIONS)
