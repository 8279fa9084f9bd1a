"""Sessions pages: create, the live status with its QR, actions, pacing, settings."""

from __future__ import annotations

from server import sessions as service
from server.models import WaSession, db
from tests.server.ui.conftest import flashes, wait_for


def _create(browser, label="Helpdesk", **extra) -> str:
    answer = browser.submit("/sessions", {"label": label, "transport": "sandbox", **extra})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return answer.headers["Location"].rsplit("/", 1)[-1]


def test_create_a_session_and_list_it(operator_browser):
    session_id = _create(operator_browser)
    row = db.session.get(WaSession, session_id)
    assert (row.label, row.transport, row.auto_start) == ("Helpdesk", "sandbox", False)
    page = operator_browser.get("/sessions").get_data(as_text=True)
    assert "Helpdesk" in page and f"/sessions/{session_id}" in page


def test_a_bad_form_shows_what_is_wrong_instead_of_failing(operator_browser):
    answer = operator_browser.submit(
        "/sessions", {"label": "", "transport": "fax", "next": "/sessions"}
    )
    assert answer.status_code == 303
    shown = flashes(operator_browser.get(answer.headers["Location"]))
    assert "label" in shown and "transport" in shown


def test_the_qr_shows_live_and_the_sandbox_phone_scans_it(operator_browser, runtime):
    session_id = _create(operator_browser, auto_start="on")
    url = f"/sessions/{session_id}"
    live = f"{url}?partial=live"
    wait_for(
        lambda: (
            "data:image/png;base64,"
            in operator_browser.get(live, headers={"X-Kabar-Fragment": "1"}).get_data(as_text=True)
        ),
        what="a QR",
    )
    fragment = operator_browser.get(live, headers={"X-Kabar-Fragment": "1"})
    assert "<html" not in fragment.get_data(as_text=True)  # just the region
    scanned = operator_browser.submit(f"{url}/scan", {"phone": "6281100000007", "next": url})
    assert "Scanned" in flashes(operator_browser.get(scanned.headers["Location"]))
    wait_for(
        lambda: 'data-status="connected"' in operator_browser.get(live).get_data(as_text=True),
        what="connected",
    )
    assert "+6281100000007" in operator_browser.get(url).get_data(as_text=True)


def test_start_stop_restart_delete(operator_browser):
    session_id = _create(operator_browser)
    url = f"/sessions/{session_id}"
    operator_browser.submit(f"{url}/start", {"next": url})
    assert db.session.get(WaSession, session_id).desired_state == "running"
    stopped = operator_browser.submit(f"{url}/stop", {"next": url})
    assert "Stopping" in flashes(operator_browser.get(stopped.headers["Location"]))
    assert db.session.get(WaSession, session_id).desired_state == "stopped"
    operator_browser.submit(f"{url}/restart", {"next": url})
    deleted = operator_browser.submit(f"{url}/delete")
    assert deleted.headers["Location"] == "/sessions"
    db.session.expire_all()
    assert db.session.get(WaSession, session_id).deleted_at is not None
    assert operator_browser.get(url).status_code == 404


def test_logout_with_the_runtime_down_says_why(operator_browser):
    session_id = _create(operator_browser)
    url = f"/sessions/{session_id}"
    answer = operator_browser.submit(f"{url}/logout", {"next": url})
    assert answer.status_code == 303
    assert "runtime process is not running" in flashes(operator_browser.get(url))


def test_pacing_and_settings_are_saved_and_checked(operator_browser):
    session_id = _create(operator_browser)
    url = f"/sessions/{session_id}"
    operator_browser.submit(
        f"{url}/pacing",
        {
            "enabled": "on",
            "min_interval": "5",
            "jitter": "1.5",
            "daily_cap": "300",
            "quiet_start": "22:00",
            "quiet_end": "06:00",
            "timezone": "Asia/Makassar",
            "next": url,
        },
    )
    pacing = db.session.get(WaSession, session_id).settings["pacing"]
    assert pacing["min_interval"] == 5.0 and pacing["daily_cap"] == 300
    assert pacing["quiet_start"] == "22:00" and pacing["timezone"] == "Asia/Makassar"
    bad = operator_browser.submit(
        f"{url}/pacing", {"min_interval": "soon", "quiet_start": "22:00", "next": url}
    )
    shown = flashes(operator_browser.get(bad.headers["Location"]))
    assert "Not a number" in shown
    bad = operator_browser.submit(f"{url}/pacing", {"quiet_start": "22:00", "next": url})
    assert "quiet_end" in flashes(operator_browser.get(bad.headers["Location"]))
    operator_browser.submit(f"{url}/settings", {"label": "Renamed", "next": url})
    row = db.session.get(WaSession, session_id)
    db.session.refresh(row)
    assert (row.label, row.auto_start) == ("Renamed", False)
    assert row.settings["pacing"]["daily_cap"] == 300  # other settings kept


def test_another_tenants_session_is_not_found(browser_for, make_user):
    from server.auth.principal import Principal

    theirs = service.create(
        Principal.for_user(make_user("operator")),
        label="theirs",
        transport="sandbox",
        auto_start=False,
    )
    mine = browser_for(make_user("operator"))
    assert mine.get(f"/sessions/{theirs.id}").status_code == 404
    assert mine.submit(f"/sessions/{theirs.id}/delete").status_code == 404
    assert "theirs" not in mine.get("/sessions").get_data(as_text=True)


def test_a_reader_sees_sessions_but_cannot_create(browser_for, make_user):
    reader = browser_for(make_user("api"))
    page = reader.get("/sessions")
    assert page.status_code == 200 and "New session" not in page.get_data(as_text=True)
    refused = reader.submit("/sessions", {"label": "x", "transport": "sandbox"})
    assert refused.status_code == 403
    assert "sessions:manage" in refused.get_data(as_text=True)
