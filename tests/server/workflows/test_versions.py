"""A workflow's versions on the dashboard: listed with who saved them, two compared (the
graph's nodes and edges, and the JSON), one restored as the next version with a note."""

from __future__ import annotations

import copy

import sqlalchemy as sa

from server.models import WorkflowVersion, db
from server.workflows import versions
from tests.server.ui.client import dashboard_client
from tests.server.workflows.conftest import shipped


def _second(doc: dict) -> dict:
    """The survey with its "sorry" node removed (a low rating is thanked too), a new
    node, and a shorter wait."""
    doc = copy.deepcopy(doc)
    del doc["nodes"]["sorry"]
    doc["nodes"]["happy"]["next"]["false"] = "thanks"
    doc["nodes"]["ask"]["params"]["timeout"] = 60
    doc["nodes"]["closed"]["next"] = {"next": "bye"}
    doc["nodes"]["bye"] = {"type": "end"}
    return doc


def test_graph_diff_names_nodes_and_edges_added_removed_and_changed():
    before = shipped("survey")
    diff = versions.graph_diff(before, _second(before))
    assert diff["nodes"] == {
        "added": ["bye"],
        "removed": ["sorry"],
        "changed": [
            {"id": "ask", "parts": ["params"]},
            {"id": "closed", "parts": ["next"]},
            {"id": "happy", "parts": ["next"]},
        ],
    }
    assert diff["edges"] == {
        "added": [("closed", "next", "bye"), ("happy", "false", "thanks")],
        "removed": [("happy", "false", "sorry")],
    }
    assert diff["top"] == [] and not diff["same"]
    moved = copy.deepcopy(before)
    moved["positions"] = {"ask": {"x": 10, "y": 20}}  # where the studio draws it
    layout = versions.graph_diff(before, moved)
    assert layout["moved"] and layout["top"] == [] and layout["nodes"]["changed"] == []
    assert not diff["moved"]
    assert versions.graph_diff(before, copy.deepcopy(before))["same"]


def test_versions_listed_compared_and_restored(app, operator, operator_headers, upload):
    first = shipped("survey")
    upload(operator_headers, first)
    upload(operator_headers, _second(first))
    browser = dashboard_client(app, operator)

    listing = browser.get("/workflows/survey/versions").get_data(as_text=True)
    assert 'data-version="2"' in listing and 'data-version="1"' in listing
    assert operator.username in listing

    page = browser.get("/workflows/survey/versions/1..2").get_data(as_text=True)
    assert '<dd data-diff="nodes-added"><code>bye</code></dd>' in page
    assert '<dd data-diff="nodes-removed"><code>sorry</code></dd>' in page
    assert "happy —false→ thanks" in page and "happy —false→ sorry" in page
    assert '<span class="del">-        &#34;timeout&#34;: 3600</span>' in page
    assert '<span class="add">+        &#34;timeout&#34;: 60</span>' in page
    picked = browser.get("/workflows/survey/versions/compare?old=2&new=1")
    assert picked.status_code == 303 and picked.location.endswith("/versions/1..2")

    restored = browser.submit("/workflows/survey/versions/1/restore", follow_redirects=True)
    assert "Version 1 restored as version 3." in restored.get_data(as_text=True)
    rows = db.session.scalars(sa.select(WorkflowVersion).order_by(WorkflowVersion.version)).all()
    assert [row.version for row in rows] == [1, 2, 3]
    assert rows[2].doc == rows[0].doc and rows[2].digest == rows[0].digest
    assert (rows[2].created_by, rows[2].note) == (operator.username, "restored from version 1")
    api = app.test_client().get("/api/v1/workflows/survey", headers=operator_headers).json
    assert api["version"] == 3 and api["versions"][-1]["note"] == "restored from version 1"

    again = browser.submit("/workflows/survey/versions/1/restore", follow_redirects=True)
    assert "is now (version 3); there is nothing to restore." in again.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowVersion)) == 3
    assert browser.get("/workflows/survey/versions/1..9").status_code == 404


def test_another_tenants_versions_look_missing(app, operator, operator_headers, upload, make_user):
    upload(operator_headers, shipped("survey"))
    stranger = dashboard_client(app, make_user("operator"))
    assert stranger.get("/workflows/survey/versions").status_code == 404
    assert stranger.get("/workflows/survey/versions/1..1").status_code == 404
    assert stranger.submit("/workflows/survey/versions/1/restore").status_code == 404


def test_the_api_compares_and_restores(client, operator_headers, upload):
    first = shipped("survey")
    upload(operator_headers, first)
    upload(operator_headers, _second(first))
    diff = client.get("/api/v1/workflows/survey/versions/1/diff/2", headers=operator_headers)
    assert diff.status_code == 200, diff.json
    assert diff.json["nodes"]["removed"] == ["sorry"]
    assert diff.json["edges"]["removed"] == [["happy", "false", "sorry"]]
    assert any(line.startswith("-") and "3600" in line for line in diff.json["json"])
    restored = client.post("/api/v1/workflows/survey/versions/1/restore", headers=operator_headers)
    assert restored.status_code == 200 and restored.json["version"] == 3
    again = client.post("/api/v1/workflows/survey/versions/1/restore", headers=operator_headers)
    assert (again.status_code, again.json["code"]) == (409, "version_is_current")
    missing = client.get("/api/v1/workflows/survey/versions/1/diff/7", headers=operator_headers)
    assert (missing.status_code, missing.json["code"]) == (404, "workflow_version_not_found")
