"""/api/v1/webhooks: endpoints, secrets shown once, the SSRF guard, tenancy, tests."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from server import sessions
from server.auth import Principal
from tests.server.webhooks.receiver import running_receiver

BASE = "/api/v1/webhooks"


@pytest.fixture
def receiver(app, monkeypatch):
    yield from running_receiver(app, monkeypatch)


@pytest.fixture
def session_id(operator):
    return sessions.create(
        Principal.for_user(operator), label="s", transport="sandbox", auto_start=False
    ).id


def _create(client, auth, **body):
    return client.post(BASE, headers=auth, json=body)


def test_create_shows_the_secret_once(client, operator_headers, session_id, receiver):
    created = _create(
        client,
        operator_headers,
        url=receiver.url,
        session_id=session_id,
        name="crm",
        events=["message.*"],
        headers={"Authorization": "Bearer x"},
    )
    assert created.status_code == 201, created.json
    secret = created.json["secret"]
    assert secret.startswith("whsec_")
    Webhook(secret)  # the standardwebhooks format
    assert created.json["events"] == ["message.*"] and created.json["enabled"] is True
    hook_id = created.json["id"]
    for response in (
        client.get(f"{BASE}/{hook_id}", headers=operator_headers),
        client.get(BASE, headers=operator_headers),
    ):
        assert response.status_code == 200
        assert "secret" not in response.get_data(as_text=True)
    rotated = client.post(f"{BASE}/{hook_id}/rotate-secret", headers=operator_headers)
    assert rotated.status_code == 200 and rotated.json["secret"] not in (secret, None)


def test_defaults_patch_and_delete(client, operator_headers, session_id, receiver):
    hook = _create(client, operator_headers, url=receiver.url, session_id=session_id).json
    assert hook["events"] == ["*"] and hook["headers"] == {}
    url = f"{BASE}/{hook['id']}"
    patched = client.patch(
        url,
        headers=operator_headers,
        json={"events": ["message.received"], "enabled": False, "headers": {"X-Tenant": "rt05"}},
    )
    assert patched.status_code == 200
    assert (patched.json["enabled"], patched.json["paused_reason"]) == (
        False,
        "disabled by request",
    )
    resumed = client.patch(url, headers=operator_headers, json={"enabled": True}).json
    assert resumed["enabled"] and resumed["paused_reason"] is None
    assert client.get(f"{BASE}?session={session_id}", headers=operator_headers).json["items"][0][
        "headers"
    ] == {"X-Tenant": "rt05"}
    assert client.delete(url, headers=operator_headers).status_code == 204
    assert client.get(url, headers=operator_headers).json["code"] == "webhook_not_found"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/hook",
        "file:///etc/passwd",
    ],
)
def test_unsafe_urls_are_refused(client, operator_headers, session_id, url):
    response = _create(client, operator_headers, url=url, session_id=session_id)
    assert response.status_code == 422
    assert response.json["code"] in ("unsafe_url", "validation_error")
    if url.startswith("http"):
        assert response.json["code"] == "unsafe_url"


def test_an_unsafe_url_is_refused_on_patch_too(client, operator_headers, session_id, receiver):
    hook = _create(client, operator_headers, url=receiver.url, session_id=session_id).json
    response = client.patch(
        f"{BASE}/{hook['id']}", headers=operator_headers, json={"url": "http://127.0.0.2/x"}
    )
    assert response.status_code == 422 and response.json["code"] == "unsafe_url"


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-id": "x"},
        {"Content-Type": "text/plain"},
        {"Host": "evil"},
        {"X-Bad": "a\r\nb"},
        {"bad name": "x"},
    ],
)
def test_reserved_or_bad_headers_are_refused(
    client, operator_headers, session_id, receiver, headers
):
    response = _create(
        client, operator_headers, url=receiver.url, session_id=session_id, headers=headers
    )
    assert response.status_code == 422 and "headers" in response.json["errors"]


def test_unknown_event_types_are_refused(client, operator_headers, session_id, receiver):
    response = _create(
        client,
        operator_headers,
        url=receiver.url,
        session_id=session_id,
        events=["message.received", "message.exploded", "nothing.*"],
    )
    assert response.status_code == 422
    assert "message.exploded" in response.json["errors"]["events"][0]


def test_global_endpoints_are_for_admins(
    client, operator_headers, admin_headers, receiver, make_user
):
    refused = _create(client, operator_headers, url=receiver.url)
    assert refused.status_code == 403 and refused.json["code"] == "admin_only"
    made = _create(client, admin_headers, url=receiver.url)
    assert made.status_code == 201 and made.json["session_id"] is None
    # Another tenant's session looks like no session at all.
    theirs = sessions.create(
        Principal.for_user(make_user("operator")), label="t", transport="sandbox", auto_start=False
    ).id
    hidden = _create(client, operator_headers, url=receiver.url, session_id=theirs)
    assert hidden.status_code == 404 and hidden.json["code"] == "session_not_found"
    assert _create(client, admin_headers, url=receiver.url, session_id=theirs).status_code == 201


def test_tenants_do_not_see_each_others_webhooks(
    client, operator_headers, session_id, receiver, make_user, login
):
    hook = _create(client, operator_headers, url=receiver.url, session_id=session_id).json
    stranger = login(make_user("operator"))
    assert client.get(BASE, headers=stranger).json["items"] == []
    for method, path in (
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/test"),
        ("post", "/rotate-secret"),
        ("get", "/deliveries"),
    ):
        response = getattr(client, method)(
            f"{BASE}/{hook['id']}{path}",
            headers=stranger,
            **({"json": {}} if method == "patch" else {}),
        )
        assert response.status_code == 404, (method, path)


def test_the_test_button_sends_a_signed_ping(
    client, operator, operator_headers, session_id, receiver
):
    hook = receiver.register(
        _create(
            client,
            operator_headers,
            url=receiver.url,
            session_id=session_id,
            headers={"X-Tenant": "rt05"},
        )
    )
    receiver.answer = lambda payload: (202, {"pong": payload["type"]})
    result = client.post(f"{BASE}/{hook['id']}/test", headers=operator_headers)
    assert result.status_code == 200, result.json
    assert result.json["ok"] and result.json["status_code"] == 202
    assert result.json["response"] == '{"pong": "webhook.ping"}'
    assert result.json["latency_ms"] >= 0 and result.json["error"] is None
    (request,) = receiver.requests
    assert request["json"]["id"] == result.json["event_id"]
    assert request["json"]["data"]["endpoint_id"] == hook["id"]
    assert request["json"]["session"] == {
        "id": session_id,
        "label": "s",
        "owner": operator.username,
    }
    assert {k.lower(): v for k, v in request["headers"].items()}["x-tenant"] == "rt05"


def test_the_test_button_reports_failures(
    client, operator_headers, session_id, receiver, app, monkeypatch
):
    hook = receiver.register(
        _create(client, operator_headers, url=receiver.url, session_id=session_id)
    )
    receiver.answer = lambda payload: (500, b"down for maintenance")
    result = client.post(f"{BASE}/{hook['id']}/test", headers=operator_headers).json
    assert (result["ok"], result["status_code"], result["response"]) == (
        False,
        500,
        "down for maintenance",
    )
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", [])  # the guard, at send time
    refused = client.post(f"{BASE}/{hook['id']}/test", headers=operator_headers)
    assert refused.status_code == 422 and refused.json["code"] == "unsafe_url"


def test_deliveries_replay_and_missing_ones(client, operator_headers, session_id, receiver):
    hook = _create(client, operator_headers, url=receiver.url, session_id=session_id).json
    page = client.get(f"{BASE}/{hook['id']}/deliveries?status=dead", headers=operator_headers)
    assert page.status_code == 200 and page.json == {"items": [], "next_cursor": None}
    bad = client.get(f"{BASE}/{hook['id']}/deliveries?status=lost", headers=operator_headers)
    assert bad.status_code == 422
    missing = client.post(f"{BASE}/deliveries/999999/replay", headers=operator_headers)
    assert missing.status_code == 404 and missing.json["code"] == "webhook_delivery_not_found"
    replay = client.post(f"{BASE}/{hook['id']}/replay", headers=operator_headers, json={})
    assert replay.status_code == 202 and replay.json == {"replayed": 0}


def test_the_api_group_cannot_manage_webhooks(client, make_user, login):
    response = client.get(BASE, headers=login(make_user("api")))
    assert response.status_code == 403 and response.json["code"] == "permission_denied"


def test_one_delivery_and_the_log_newest_first(
    client, operator_headers, session_id, receiver, make_user, login
):
    created = _create(client, operator_headers, url=receiver.url, session_id=session_id)
    hook_id = receiver.register(created)["id"]
    from server import eventlog
    from server.events import SessionStatus
    from server.models import WaSession, db

    session = db.session.get(WaSession, session_id)
    for status in ("connecting", "connected"):
        eventlog.record(SessionStatus(status=status), session)
    db.session.commit()
    oldest = client.get(f"{BASE}/{hook_id}/deliveries", headers=operator_headers).json
    newest = client.get(f"{BASE}/{hook_id}/deliveries?order=newest", headers=operator_headers).json
    ids = [d["id"] for d in oldest["items"]]
    assert len(ids) == 2 and [d["id"] for d in newest["items"]] == ids[::-1]
    one = client.get(f"{BASE}/deliveries/{ids[0]}", headers=operator_headers)
    assert one.status_code == 200 and one.json["event_type"] == "session.status"
    stranger = login(make_user("operator"))
    assert client.get(f"{BASE}/deliveries/{ids[0]}", headers=stranger).status_code == 404
