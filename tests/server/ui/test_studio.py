"""The studio's editor routes: the page hands the editor the stored document as it is,
checking answers the API's messages with each node's outputs, and saving an unchanged
document stores no new version (every shipped workflow, the editor's own data path)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.errors import ValidationFailed
from server.models import Workflow, WorkflowVersion, db
from server.ui.pages import studio
from server.workflows import store

WORKFLOWS = Path(__file__).parents[3] / "workflows"
SHIPPED = sorted(WORKFLOWS.rglob("*.json"))
DATA = re.compile(r'<script type="application/json" id="studio-data">(.*?)</script>', re.S)


def _data(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return json.loads(html.unescape(DATA.search(response.get_data(as_text=True)).group(1)))


def _post(browser, url: str, doc) -> object:
    browser.refresh_token()
    return browser.post(
        url,
        data=json.dumps(doc),
        content_type="application/json",
        headers={"X-CSRFToken": browser.token},
    )


def _versions(name: str) -> int:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(WorkflowVersion)
        .join(Workflow)
        .where(Workflow.name == name)
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(WORKFLOWS)))
def test_every_shipped_workflow_opens_as_it_is_and_saves_back_unchanged(operator_browser, path):
    doc = json.loads(path.read_text(encoding="utf-8"))
    saved = _post(operator_browser, "/workflows/studio/save", doc)
    assert saved.status_code == 200, saved.json
    assert saved.json["created"] is True and saved.json["version"] == 1

    data = _data(operator_browser.get(f"/workflows/{doc['name']}/studio"))
    assert data["doc"] == doc
    assert data["workflow"] == doc["name"]
    assert set(data["layout"]) == set(doc["nodes"])  # where graph.py would draw each

    again = _post(operator_browser, "/workflows/studio/save", data["doc"])
    assert again.status_code == 200, again.json
    assert (again.json["created"], again.json["version"]) == (False, 1)
    assert _versions(doc["name"]) == 1


def test_the_catalogue_groups_every_node_type_with_its_text_outputs_and_schema():
    catalogue = studio.catalogue()
    by_type = {node["type"]: node for node in catalogue["nodes"]}
    assert by_type["wait_for_reply"]["group"] == "wait"
    assert by_type["wait_for_reply"]["outputs"] == ["reply", "timeout", "invalid", "error"]
    assert by_type["wait_for_reply"]["summary"].startswith("Wait for the chat's next message")
    assert "timeout" in by_type["wait_for_reply"]["params"]["required"]
    assert by_type["branch"]["expressions"] == ["condition"]
    assert by_type["switch"]["dynamic_outputs"] is True
    assert set(catalogue["triggers"]) == {"message", "schedule", "hook", "event", "manual"}
    assert {node["group"] for node in catalogue["nodes"]} <= set(catalogue["groups"])


def test_check_answers_the_apis_messages_by_json_path_and_each_nodes_outputs(operator_browser):
    doc = json.loads((WORKFLOWS / "survey.json").read_text(encoding="utf-8"))
    ok = _post(operator_browser, "/workflows/studio/check", doc)
    assert ok.status_code == 200 and ok.json["valid"] is True
    assert ok.json["outputs"]["ask"] == ["reply", "timeout", "invalid", "error"]
    assert set(ok.json["layout"]) == set(doc["nodes"])  # where Arrange puts them

    del doc["nodes"]["ask"]["next"]["timeout"]
    doc["nodes"]["score"]["params"]["variables"] = "nothing"
    doc["nodes"]["pick"] = {
        "type": "switch",
        "params": {"cases": [{"when": "vars.rating > 4", "output": "great"}]},
    }
    doc["nodes"]["happy"]["next"]["false"] = "pick"
    refused = _post(operator_browser, "/workflows/studio/check", doc)
    assert refused.status_code == 422
    assert refused.json["code"] == "workflow_invalid"
    with (
        operator_browser.application.test_request_context(),
        pytest.raises(ValidationFailed) as api,
    ):
        store.check(doc)  # what the API answers, word for word
    assert refused.json["errors"] == api.value.errors
    assert "needs a timeout path" in refused.json["errors"]["$.nodes.ask.next.timeout"][0]
    assert refused.json["outputs"]["pick"] == ["great", "default", "error"]


def test_positions_are_kept_and_a_moved_node_is_a_new_version(operator_browser):
    doc = json.loads((WORKFLOWS / "survey.json").read_text(encoding="utf-8"))
    assert _post(operator_browser, "/workflows/studio/save", doc).status_code == 200
    moved = {**doc, "positions": {"ask": {"x": 10, "y": 20}}}
    answer = _post(operator_browser, "/workflows/studio/save", moved)
    assert (answer.json["created"], answer.json["version"]) == (False, 2)
    assert _data(operator_browser.get("/workflows/survey/studio"))["doc"]["positions"] == {
        "ask": {"x": 10, "y": 20}
    }


def test_refusals_are_json_with_a_code_and_nothing_is_stored(operator_browser):
    nothing = operator_browser.post(
        "/workflows/studio/save", data={"csrf_token": operator_browser.refresh_token()}
    )
    assert nothing.status_code == 422 and nothing.json["code"] == "workflow_invalid"
    broken = _post(
        operator_browser,
        "/workflows/studio/save",
        {"name": "x", "start": "a", "nodes": {"a": {"type": "sned"}}},
    )
    assert broken.status_code == 422
    assert "Did you mean 'send'?" in broken.json["errors"]["$.nodes.a.type"][0]
    assert _versions("x") == 0
    unknown = operator_browser.get("/workflows/nobody/studio")
    assert unknown.status_code == 404


def test_the_workflow_pages_link_to_the_studio(operator_browser):
    doc = json.loads((WORKFLOWS / "survey.json").read_text(encoding="utf-8"))
    _post(operator_browser, "/workflows/studio/save", doc)
    assert 'href="/workflows/survey/studio"' in operator_browser.get("/workflows/survey").get_data(
        as_text=True
    )
    assert 'href="/workflows/studio/new"' in operator_browser.get("/workflows").get_data(
        as_text=True
    )
    empty = _data(operator_browser.get("/workflows/studio/new"))
    assert empty["workflow"] is None and empty["doc"] == {"name": "", "start": "", "nodes": {}}


def test_the_editor_speaks_the_dashboards_language(operator_browser):
    english = _data(operator_browser.get("/workflows/studio/new"))["texts"]
    assert english["goes_to"] == "%(output)s goes to"
    indonesian = _data(
        operator_browser.get("/workflows/studio/new", headers={"Accept-Language": "id"})
    )["texts"]
    assert indonesian["goes_to"] == "%(output)s menuju"
    assert set(indonesian) == set(english) == set(studio.TEXTS)
