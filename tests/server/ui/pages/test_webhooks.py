"""Webhooks pages: create (secret shown once), edit, test ping, log, replay, delete."""

from __future__ import annotations

import re

import sqlalchemy as sa

from server.auth.principal import Principal
from server.models import StoredEvent, WebhookDelivery, WebhookEndpoint, db
from tests.server.ui.conftest import flashes


def _session(operator):
    from server import sessions

    return sessions.create(
        Principal.for_user(operator), label="Hooked", transport="sandbox", auto_start=False
    )


def test_create_shows_the_secret_once(app, operator_browser, operator, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", ["127.0.0.1"])
    session = _session(operator)
    answer = operator_browser.submit(
        "/webhooks",
        {
            "session_id": session.id,
            "name": "CRM",
            "url": "http://127.0.0.1:9/hook",
            "events": "message.*, session.status",
            "headers": "X-Token: abc",
            "enabled": "on",
        },
    )
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"] == "no-store"
    secret = re.search(r'value="(whsec_[^"]+)"', answer.get_data(as_text=True)).group(1)
    endpoint = db.session.scalar(sa.select(WebhookEndpoint))
    assert endpoint.secret == secret
    assert endpoint.events == ["message.*", "session.status"]
    assert endpoint.headers == {"X-Token": "abc"}
    detail = operator_browser.get(f"/webhooks/{endpoint.id}").get_data(as_text=True)
    assert secret not in detail and "CRM" in detail
    rotated = operator_browser.submit(f"/webhooks/{endpoint.id}/rotate-secret")
    new = re.search(r'value="(whsec_[^"]+)"', rotated.get_data(as_text=True)).group(1)
    assert new != secret


def test_refused_urls_and_events_are_explained(operator_browser, operator):
    session = _session(operator)
    answer = operator_browser.submit(
        "/webhooks", {"session_id": session.id, "url": "http://10.0.0.1/hook", "next": "/webhooks"}
    )
    assert answer.status_code == 303
    assert "refused to fetch" in flashes(operator_browser.get(answer.headers["Location"]))
    answer = operator_browser.submit(
        "/webhooks",
        {
            "session_id": session.id,
            "url": "https://example.com/hook",
            "events": "nope.x",
            "next": "/webhooks",
        },
    )
    assert "Unknown event type" in flashes(operator_browser.get(answer.headers["Location"]))
    answer = operator_browser.submit(
        "/webhooks", {"url": "https://example.com/hook", "next": "/webhooks"}
    )
    assert "only admins" in flashes(operator_browser.get(answer.headers["Location"]))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0


def _endpoint(operator, app):
    session = _session(operator)
    endpoint = WebhookEndpoint(
        owner_id=operator.id,
        session_id=session.id,
        name="E",
        url="http://127.0.0.1:9/hook",
        secret="whsec_dGVzdA==",
    )
    db.session.add(endpoint)
    event = StoredEvent(
        type="session.status",
        session_id=session.id,
        owner_id=operator.id,
        data={"status": "stopped"},
    )
    db.session.add(event)
    db.session.flush()
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        event_seq=event.seq,
        ordering_key=session.id,
        status="dead",
        attempts=3,
        last_error="connection refused",
    )
    db.session.add(delivery)
    db.session.commit()
    return endpoint, delivery


def test_log_replay_edit_test_and_delete(app, operator_browser, operator, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", ["127.0.0.1"])  # port 9: closed
    endpoint, delivery = _endpoint(operator, app)
    url = f"/webhooks/{endpoint.id}"
    page = operator_browser.get(url).get_data(as_text=True)
    assert "session.status" in page and "connection refused" in page
    assert "dead" in operator_browser.get(f"{url}?status=dead").get_data(as_text=True)
    replayed = operator_browser.submit(f"/webhooks/deliveries/{delivery.id}/replay", {"next": url})
    assert "queued again" in flashes(operator_browser.get(replayed.headers["Location"]))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 2
    bulk = operator_browser.submit(f"{url}/replay", {"status": "all", "next": url})
    assert "0 deliveries" in flashes(operator_browser.get(bulk.headers["Location"]))
    ping = operator_browser.submit(f"{url}/test", {"next": url})
    assert "test ping failed" in flashes(operator_browser.get(ping.headers["Location"]))
    operator_browser.submit(
        url, {"name": "Renamed", "url": "http://127.0.0.1:9/other", "events": "*", "next": url}
    )
    db.session.refresh(endpoint)
    assert (endpoint.name, endpoint.enabled, endpoint.paused_reason) == (
        "Renamed",
        False,
        "disabled by request",
    )
    deleted = operator_browser.submit(f"{url}/delete")
    assert deleted.headers["Location"] == "/webhooks"
    assert db.session.scalar(sa.select(WebhookEndpoint)) is None
