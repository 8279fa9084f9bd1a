"""Every endpoint x every built-in group x another tenant's resources: no leak.

The walk is over the app's URL map, so a new endpoint is checked the day it is added.
A route parameter this file cannot fill fails the test: teach ``TARGETS`` about it.
The API (Bearer tokens) and the dashboard (``ui.*`` views: a cookie login, CSRF tokens)
are walked alike; a dashboard view declares itself with ``@bp.requires(...)`` or
``@bp.public`` (server/ui/base.py) as an API view does.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from server.auth import apikeys, tokens
from server.auth.permissions import BUILTIN_GROUPS
from server.auth.principal import Principal
from server.models import User
from tests.server.ui.client import dashboard_client

# Views that answer without credentials, on purpose.
PUBLIC = {"api-docs.openapi_json", "ui.static"}


@dataclass
class Route:
    rule: str
    method: str
    endpoint: str
    permissions: tuple[str, ...] | None  # None: public
    params: tuple[str, ...]

    @property
    def ui(self) -> bool:
        return self.endpoint.startswith("ui.")


def _routes(app, *, ui: bool = False) -> list[Route]:
    """The API's routes, or (``ui``) the dashboard's."""
    routes = []
    for rule in app.url_map.iter_rules():
        if ui != rule.endpoint.startswith("ui."):
            continue
        if not ui and not (rule.rule.startswith("/api/v1") or rule.rule == "/metrics"):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            func = getattr(getattr(view, "view_class", None), method.lower(), view)
            public = getattr(func, "_kabar_public", False) or rule.endpoint in PUBLIC
            permissions = getattr(func, "_kabar_permissions", None)
            assert public or permissions is not None, (
                f"{method} {rule.rule} is neither @requires(...) nor @public: every endpoint "
                "must say who may call it"
            )
            routes.append(
                Route(
                    rule.rule,
                    method,
                    rule.endpoint,
                    None if public else tuple(permissions),
                    tuple(rule.arguments),
                )
            )
    return routes


def _headers(app, user: User) -> dict[str, str]:
    with app.test_request_context():
        return {"Authorization": f"Bearer {tokens.issue_tokens(user)['access_token']}"}


# How to fill each route parameter with a resource that belongs to someone else.
# owned=True: a tenant resource, which non-admins must not see (404).
@dataclass
class Target:
    make: Callable[[Callable, dict], object]  # (make_user, values filled so far) -> value
    owned: bool
    missing: object = None  # an id that exists for nobody


def _foreign_message(make_user, filled: dict) -> str:
    """A sent message of the foreign session: its outbox row and its history entry."""
    from server.models import Message, OutboxMessage, db, utcnow

    row = OutboxMessage(
        session_id=filled["session_id"],
        wa_id="3EB0AAAAAAAAAAAAAAAAAA",
        to_jid="628123@s.whatsapp.net",
        kind="text",
        payload={"text": "x"},
        status="sent",
    )
    db.session.add(row)
    db.session.flush()
    db.session.add(
        Message(
            id=row.id,
            session_id=row.session_id,
            wa_id=row.wa_id,
            direction="out",
            chat_jid=row.to_jid,
            sender_jid="62811@s.whatsapp.net",
            from_me=True,
            kind="text",
            text="x",
            timestamp=utcnow(),
        )
    )
    db.session.commit()
    return row.id


def _foreign_broadcast(make_user, filled: dict) -> str:
    from server.models import Broadcast, db

    row = Broadcast(session_id=filled["session_id"], name="theirs", total=0)
    db.session.add(row)
    db.session.commit()
    return row.id


def _foreign_chat(make_user, filled: dict) -> str:
    """A chat of the foreign session: one inbound message makes it exist."""
    from server.models import Message, db, utcnow
    from server.whatsapp.transport import new_message_id

    db.session.add(
        Message(
            session_id=filled["session_id"],
            wa_id=new_message_id(),
            direction="in",
            chat_jid="6281234567890@s.whatsapp.net",
            chat_phone="6281234567890",
            sender_jid="6281234567890@s.whatsapp.net",
            kind="text",
            text=FOREIGN,
            timestamp=utcnow(),
        )
    )
    db.session.commit()
    return "6281234567890"


def _ticket(make_user, filled: dict) -> str:
    """A helpdesk ticket. The helpdesk is the installation's, not a tenant's: whoever
    manages it sees every ticket; field officers only theirs (tests/server/api/
    test_tickets.py checks that)."""
    from server.tickets import lifecycle
    from server.tickets.actors import Actor

    return lifecycle.create("lampu mati", Actor.system(), reporter_phone="6281234567890").number


def _person(make_user, filled: dict) -> str:
    from server.tickets import people

    return people.create(name="Budi", phone=f"0812{next(_PHONES):08d}").id


_PHONES = itertools.count(10_000_000)


def _foreign_session(make_user, filled: dict, label: str = "theirs") -> str:
    from server import sessions

    owner = make_user("operator")
    return sessions.create(
        Principal.for_user(owner), label=label, transport="sandbox", auto_start=False
    ).id


def _webhook_of(owner: User, name: str = "theirs") -> int:
    """A webhook of ``owner``'s own session, made directly: an admin's test ping at its
    URL (a TEST-NET address) is refused by the SSRF guard before any network."""
    from server import sessions
    from server.models import WebhookEndpoint, db

    session = sessions.create(
        Principal.for_user(owner), label="hooked", transport="sandbox", auto_start=False
    )
    row = WebhookEndpoint(
        owner_id=owner.id,
        session_id=session.id,
        name=name,
        url="http://192.0.2.1/hook",
        secret="whsec_dGhlaXJzZWNyZXQ=",
    )
    db.session.add(row)
    db.session.commit()
    return row.id


def _foreign_delivery(make_user, filled: dict) -> int:
    """A delivery (of one stored event) to another tenant's webhook."""
    from server.models import StoredEvent, WebhookDelivery, WebhookEndpoint, db

    endpoint = db.session.get(WebhookEndpoint, _webhook_of(make_user("operator")))
    event = StoredEvent(
        type="session.status",
        session_id=endpoint.session_id,
        owner_id=endpoint.owner_id,
        data={"status": "stopped"},
    )
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        event_seq=event.seq,
        ordering_key=endpoint.session_id,
        status="dead",
    )
    db.session.add(delivery)
    db.session.commit()
    return delivery.id


def _workflow_of(owner: User, name: str | None = None) -> str:
    from server.models import db
    from server.workflows import store

    name = name or f"theirs-{owner.id}"
    doc = {
        "name": name,
        "trigger": {"type": "hook"},
        "start": "done",
        "nodes": {"done": {"type": "end"}},
    }
    row, _changed, _token = store.save(doc, owner_id=owner.id)
    db.session.commit()
    return row.name


def _foreign_run(make_user, filled: dict) -> str:
    """A failed run of another tenant's workflow (so cancel and retry would act)."""
    from nodes.run import Run
    from server.models import Workflow, WorkflowRun, db

    name = _workflow_of(make_user("operator"))
    workflow = db.session.scalar(sa.select(Workflow).where(Workflow.name == name))
    state = Run(
        id=uuid.uuid4().hex,
        workflow={"name": name, "version": 1},
        trigger={"type": "manual"},
        status="failed",
        current="done",
        error="failed on purpose",
    )
    run = WorkflowRun(
        id=state.id,
        workflow_id=workflow.id,
        version=1,
        owner_id=workflow.owner_id,
        status="failed",
        trigger_type="manual",
        current="done",
        state=state.to_dict(),
    )
    db.session.add(run)
    db.session.commit()
    return run.id


@pytest.fixture(autouse=True)
def _event_streams_end_at_once(app, monkeypatch):
    """GET /api/v1/events streams for KABAR_EVENTS_STREAM_SECONDS; here it must end after
    its first poll, so the walk reads whole responses."""
    monkeypatch.setitem(app.config["KABAR"], "EVENTS_STREAM_SECONDS", 0)


def _foreign_watch(make_user, filled: dict) -> str:
    """A reply watch (waiting, no prompt) on another tenant's session; its callback is a
    TEST-NET address, allowed only while it is made, so nothing is ever POSTed there."""
    from flask import current_app

    from server import sessions
    from server.workflows import watches

    owner = make_user("operator")
    principal = Principal.for_user(owner)
    session = sessions.create(principal, label="watched", transport="sandbox", auto_start=False)
    settings = current_app.config["KABAR"]
    before = settings["WEBHOOK_ALLOW"]
    settings["WEBHOOK_ALLOW"] = ["192.0.2.1"]
    try:
        row, _endpoint, _created = watches.create(
            principal,
            session_id=session.id,
            chat="6281234567890",
            callback_url="http://192.0.2.1/resume",
            timeout=3600,
        )
    finally:
        settings["WEBHOOK_ALLOW"] = before
    return row.id


TARGETS: dict[str, Target] = {
    "session_id": Target(_foreign_session, owned=True, missing="0000000000000000"),
    # Messages live inside a session: the foreign session already hides them.
    "message_id": Target(_foreign_message, owned=True, missing="3EB0000000000000000000"),
    "broadcast_id": Target(_foreign_broadcast, owned=True, missing="nope"),
    "user_id": Target(lambda make_user, _: make_user("operator").id, owned=False),
    "name": Target(lambda make_user, _: "field", owned=False),
    # WhatsApp groups and contacts live on WhatsApp: the foreign session hides them.
    "group_jid": Target(lambda make_user, _: "120363012345678901@g.us", owned=False),
    "phone": Target(lambda make_user, _: "0812-3456-7890", owned=False),
    # A call rings on WhatsApp: the foreign session hides it.
    "call_id": Target(lambda make_user, _: "CALL0000000000000000000000000000", owned=False),
    # A runtime host is the installation's, not a tenant's (runtime:manage: admins).
    "host_id": Target(lambda make_user, _: "vm:1:0000", owned=False),
    # A poll is a message the session sent: the foreign session hides it.
    "poll_id": Target(lambda make_user, _: "3EB0AAAAAAAAAAAAAAAAAA", owned=False),
    # A chat is messages stored in a session: the foreign session's own chat.
    "chat": Target(_foreign_chat, owned=True, missing="6280000000001"),
    "key_id": Target(
        lambda make_user, _: (
            apikeys.create(
                Principal.for_user(make_user("operator")), name="theirs", permissions=None
            )[0].id
        ),
        owned=True,
        missing=999_999,
    ),
    "webhook_id": Target(
        lambda make_user, _: _webhook_of(make_user("operator")), owned=True, missing=999_999
    ),
    "delivery_id": Target(_foreign_delivery, owned=True, missing=999_999),
    "workflow": Target(
        lambda make_user, _: _workflow_of(make_user("operator")),
        owned=True,
        missing="nobodys-workflow",
    ),
    "run_id": Target(_foreign_run, owned=True, missing="0" * 32),
    "watch_id": Target(_foreign_watch, owned=True, missing="0" * 32),
    "number": Target(_ticket, owned=False),
    "person_id": Target(_person, owned=False),
    # Versions live inside a workflow: the foreign workflow already hides them.
    "version": Target(lambda make_user, _: 1, owned=False),
    "old": Target(lambda make_user, _: 1, owned=False),
    "new": Target(lambda make_user, _: 1, owned=False),
}


# Owned resources of another tenant, named so that any listing that leaks them is caught.
FOREIGN = "foreign-tenant-marker"
SEED_FOREIGN: list[Callable[[User], object]] = [
    lambda owner: apikeys.create(Principal.for_user(owner), name=FOREIGN, permissions=None),
    lambda owner: __import__("server.sessions").sessions.create(
        Principal.for_user(owner), label=FOREIGN, transport="sandbox", auto_start=False
    ),
    lambda owner: _webhook_of(owner, name=FOREIGN),
    lambda owner: _workflow_of(owner, name=FOREIGN),
    lambda owner: _run_of(FOREIGN),
]


def _run_of(name: str) -> str:
    """A waiting run of the workflow ``name``, which names it (run listings show it)."""
    from server.models import Workflow, WorkflowRun, db

    workflow = db.session.scalar(sa.select(Workflow).where(Workflow.name == name))
    run = WorkflowRun(
        workflow_id=workflow.id,
        version=1,
        owner_id=workflow.owner_id,
        status="waiting",
        trigger_type="manual",
        current="done",
        state={"workflow": {"name": name, "version": 1}},
    )
    db.session.add(run)
    db.session.commit()
    return run.id


def _fill(route: Route, make_user, *, missing: bool = False) -> tuple[str, bool]:
    """The URL with another tenant's resources (or, with ``missing``, nobody's)."""
    url, owned, filled = route.rule, False, {}
    for param in sorted(route.params, key=lambda p: p != "session_id"):
        assert param in TARGETS, f"{route.rule}: teach TARGETS how to fill <{param}>"
        target = TARGETS[param]
        owned = owned or target.owned
        value = target.missing if missing and target.owned else target.make(make_user, filled)
        filled[param] = value
        url = url.replace(f"<int:{param}>", str(value)).replace(f"<string:{param}>", str(value))
        url = url.replace(f"<{param}>", str(value))
    return url, owned


def _call(client, route: Route, url: str, headers: dict[str, str]):
    kwargs = {"headers": headers}
    if route.method in {"POST", "PATCH", "PUT"}:
        kwargs["json"] = {}
    return client.open(url, method=route.method, **kwargs)


def test_every_endpoint_refuses_anonymous_callers(app, client, make_user):
    for route in _routes(app):
        if route.permissions is None:
            continue
        url, _ = _fill(route, make_user)
        response = _call(client, route, url, {})
        assert response.status_code == 401, f"{route.method} {route.rule} without credentials"
        assert response.json["code"] == "unauthorized"


@pytest.mark.parametrize("group", list(BUILTIN_GROUPS))
def test_every_endpoint_x_group_x_other_tenants_resources(app, client, make_user, group):
    granted = set(BUILTIN_GROUPS[group][1])
    stranger = make_user("operator")
    for seed in SEED_FOREIGN:
        seed(stranger)
    for route in _routes(app):
        if route.permissions is None:
            continue
        caller = make_user(group)
        url, owned = _fill(route, make_user)
        response = _call(client, route, url, _headers(app, caller))
        where = f"{group}: {route.method} {url}"
        if not set(route.permissions) <= granted:
            assert response.status_code == 403, where
            assert response.json["code"] == "permission_denied", where
            continue
        assert response.status_code not in (401, 403), f"{where} -> {response.json}"
        if group != "admin":
            assert FOREIGN.encode() not in response.get_data(), f"{where} leaked"
        if owned and group != "admin":
            # Someone else's resource must look exactly like one that does not exist.
            url_missing, _ = _fill(route, make_user, missing=True)
            nobody = _call(client, route, url_missing, _headers(app, caller))
            assert (response.status_code, response.json.get("code")) == (
                nobody.status_code,
                nobody.json.get("code"),
            ), f"{where} leaks existence"
            assert response.status_code in (404, 422), f"{where} -> {response.json}"
        elif owned:
            assert response.status_code != 404, f"{where}: admins see every tenant"


# --- the dashboard --------------------------------------------------------------------------


def _browser(app, user: User | None):
    """A client with a dashboard login for ``user`` (None: anonymous), and its CSRF
    token: a refused request must be refused for who it is, not for a missing token."""
    client = dashboard_client(app, user)
    return client, client.refresh_token()


def _ui_call(client, token: str, route: Route, url: str):
    if route.method in {"POST", "PATCH", "PUT", "DELETE"}:
        return client.open(url, method=route.method, data={"csrf_token": token})
    return client.open(url, method=route.method)


def test_every_dashboard_page_sends_anonymous_callers_to_the_login(app, make_user):
    routes = _routes(app, ui=True)
    assert any(r.endpoint == "ui.overview.index" for r in routes)
    for route in routes:
        if route.permissions is None:
            continue
        client, token = _browser(app, None)
        url, _ = _fill(route, make_user)
        response = _ui_call(client, token, route, url)
        where = f"{route.method} {route.rule} without a login"
        assert response.status_code == 302, f"{where}: {response.get_data(as_text=True)[-600:]}"
        assert response.headers["Location"].startswith("/login"), where


def test_a_dashboard_post_without_the_csrf_token_is_refused(app, make_user):
    client, _ = _browser(app, make_user("admin"))
    for route in _routes(app, ui=True):
        if route.method != "POST":
            continue
        url, _ = _fill(route, make_user)
        response = client.post(url, data={})
        assert response.status_code == 400, f"POST {route.rule} without a CSRF token"
        assert "did not come from this site" in response.get_data(as_text=True)


@pytest.mark.parametrize("group", list(BUILTIN_GROUPS))
def test_every_dashboard_page_x_group_x_other_tenants_resources(app, make_user, group):
    granted = set(BUILTIN_GROUPS[group][1])
    stranger = make_user("operator")
    for seed in SEED_FOREIGN:
        seed(stranger)
    # One login for the walk (logins are slow to make); a view that ended it would show
    # as a redirect to the login page below.
    client, token = _browser(app, make_user(group))
    for route in _routes(app, ui=True):
        if route.permissions is None:
            continue
        url, owned = _fill(route, make_user)
        response = _ui_call(client, token, route, url)
        where = f"{group}: {route.method} {url}"
        text = response.get_data().decode("utf-8", errors="replace")  # an export is binary
        if not set(route.permissions) <= granted:
            assert response.status_code == 403, where
            assert "needs the permission" in text, where
            continue
        assert response.status_code not in (401, 403, 500), f"{where} -> {text[:500]}"
        assert not (response.status_code == 302 and "/login" in response.headers["Location"]), (
            f"{where}: logged out"
        )
        if group != "admin":
            assert FOREIGN not in text, f"{where} leaked"
        if owned and group != "admin":
            url_missing, _ = _fill(route, make_user, missing=True)
            nobody = _ui_call(client, token, route, url_missing)
            assert response.status_code == nobody.status_code == 404, (
                f"{where} -> {response.status_code}, nobody's -> {nobody.status_code}"
            )
        elif owned:
            assert response.status_code != 404, f"{where}: admins see every tenant"


# --- the fonnte-compatible API (/fonnte) ----------------------------------------------------
# fonnte's conventions: the token is a Kabar API key bound to one session, and every
# refusal is HTTP 200 with {"status": false, "reason": ...} (docs/fonnte.md).


def _fonnte_routes(app) -> list[Route]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/fonnte"):
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            public = getattr(view, "_kabar_public", False)
            permissions = getattr(view, "_kabar_permissions", None)
            assert public or permissions is not None, (
                f"{method} {rule.rule} is neither a device-token view nor @public"
            )
            routes.append(
                Route(
                    rule.rule,
                    method,
                    rule.endpoint,
                    None if public else tuple(permissions),
                    tuple(rule.arguments),
                )
            )
    assert {r.rule for r in routes} >= {"/fonnte/send", "/fonnte/status", "/fonnte/device"}
    return routes


def _fonnte_call(client, route: Route, headers: dict[str, str], data: dict | None = None):
    response = client.open(route.rule, method=route.method, headers=headers, data=data or {})
    assert response.status_code == 200, f"{route.method} {route.rule} -> {response.status_code}"
    return response.json


def _device_key(client, app, owner: User) -> str:
    """An API key of ``owner``, bound to a session of theirs, made through the API."""
    from server import sessions

    session = sessions.create(
        Principal.for_user(owner), label="device", transport="sandbox", auto_start=False
    )
    made = client.post(
        "/api/v1/api-keys",
        headers=_headers(app, owner),
        json={"name": "device", "session_id": session.id},
    )
    assert made.status_code == 201, made.json
    return made.json["key"]


def test_fonnte_routes_refuse_all_but_a_device_token(app, client, make_user):
    owner = make_user("operator")
    unbound = client.post(
        "/api/v1/api-keys", headers=_headers(app, owner), json={"name": "unbound"}
    ).json["key"]
    callers = [
        {},
        {"Authorization": unbound},
        {"Authorization": "kabar_nope_nope"},
        *({"Authorization": _headers(app, make_user(g))["Authorization"]} for g in BUILTIN_GROUPS),
    ]
    for route in _fonnte_routes(app):
        if route.permissions is None:
            continue
        for headers in callers:
            answer = _fonnte_call(client, route, headers)
            assert (answer["status"], answer["reason"]) == (False, "invalid token"), (
                f"{route.rule} with {headers}"
            )


@pytest.mark.parametrize("group", list(BUILTIN_GROUPS))
def test_fonnte_routes_x_group_x_other_sessions(app, client, make_user, group):
    from server.models import OutboxMessage, db

    granted = set(BUILTIN_GROUPS[group][1])
    stranger = make_user("operator")
    for seed in SEED_FOREIGN:
        seed(stranger)
    theirs = OutboxMessage(
        session_id=_foreign_session(make_user, {}),
        wa_id="3EB0FOREIGN",
        to_jid="628123@s.whatsapp.net",
        kind="text",
        payload={"text": FOREIGN},
        status="sent",
    )
    db.session.add(theirs)
    db.session.commit()
    key = {"Authorization": _device_key(client, app, make_user(group))}
    for route in _fonnte_routes(app):
        if route.permissions is None:
            continue
        answer = _fonnte_call(client, route, key, {"id": str(theirs.seq)})
        where = f"{group}: {route.method} {route.rule}"
        if not set(route.permissions) <= granted:
            assert (answer["status"], answer["code"]) == (False, "permission_denied"), where
            continue
        assert answer.get("code") not in ("unauthorized", "permission_denied"), where
        assert FOREIGN not in str(answer), f"{where} leaked"
        if route.rule == "/fonnte/status":
            # Another session's message looks exactly like one that does not exist,
            # for admins too: a device token is one device.
            nobody = _fonnte_call(client, route, key, {"id": str(theirs.seq + 1000)})
            assert answer == nobody, where


def test_fonnte_media_links_are_the_credential(client):
    for forged in ("nothing", "eyJhIjoxfQ.forged.sig"):
        assert client.get(f"/fonnte/media/{forged}").status_code == 404
