"""/api/v1/workflows, /runs and /hooks: upload and versions, errors at their JSON path,
enable and disable, hooks with tokens and respond, manual runs, cancel and retry."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa

from server import sessions
from server.auth import Principal
from server.models import OutboxMessage, WorkflowRun, db
from tests.server.workflows.conftest import shipped

BASE = "/api/v1/workflows"


def _doc(name="greet", **nodes):
    return {
        "name": name,
        "trigger": {"type": "message", "command": ["#hi"]},
        "start": "hello",
        "nodes": nodes or {"hello": {"type": "send", "params": {"text": "Halo"}}},
    }


@pytest.fixture
def session_id(operator):
    return sessions.create(
        Principal.for_user(operator), label="desk", transport="sandbox", auto_start=False
    ).id


def test_upload_versions_and_detail(client, operator_headers):
    first = client.post(BASE, headers=operator_headers, json=_doc())
    assert first.status_code == 200, first.json
    assert first.json["created"] is True and first.json["version"] == 1
    assert first.json["enabled"] is False  # new workflows wait to be enabled
    again = client.post(BASE, headers=operator_headers, json=_doc())
    assert (again.json["created"], again.json["version"]) == (False, 1)  # unchanged
    changed = _doc(hello={"type": "send", "params": {"text": "Halo lagi"}})
    second = client.post(f"{BASE}?enable=true", headers=operator_headers, json=changed)
    assert (second.json["version"], second.json["enabled"]) == (2, True)
    detail = client.get(f"{BASE}/greet", headers=operator_headers).json
    assert detail["doc"]["nodes"]["hello"]["params"]["text"] == "Halo lagi"
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    old = client.get(f"{BASE}/greet?version=1", headers=operator_headers).json
    assert old["doc"]["nodes"]["hello"]["params"]["text"] == "Halo"
    listed = client.get(BASE, headers=operator_headers).json["items"]
    assert [w["name"] for w in listed] == ["greet"]


def test_an_invalid_workflow_names_each_problem_by_json_path(client, operator_headers):
    bad = _doc(
        hello={
            "type": "wait_for_reply",
            "params": {"prompt": "?", "timeout": 60},
            "next": {"reply": "nowhere"},
        }
    )
    for url in (BASE, f"{BASE}/validate"):
        response = client.post(url, headers=operator_headers, json=bad)
        assert response.status_code == 422
        assert response.json["code"] == "workflow_invalid"
        errors = response.json["errors"]
        assert "$.nodes.hello.next.reply" in errors
        assert "$.nodes.hello.next" in errors or "$.nodes.hello.next.timeout" in errors
    assert client.get(BASE, headers=operator_headers).json["items"] == []


def test_upload_as_a_file_and_bad_json(client, operator_headers):
    data = {"file": (io.BytesIO(json.dumps(_doc()).encode()), "greet.json")}
    uploaded = client.post(
        BASE, headers=operator_headers, data=data, content_type="multipart/form-data"
    )
    assert uploaded.status_code == 200, uploaded.json
    broken = client.post(
        BASE, headers=operator_headers, data="{not json", content_type="application/json"
    )
    assert broken.status_code == 422 and broken.json["code"] == "workflow_invalid"
    assert "line 1" in broken.json["message"]
    empty = client.post(BASE, headers=operator_headers)
    assert empty.status_code == 422


def test_validate_answers_what_it_found(client, operator_headers):
    response = client.post(f"{BASE}/validate", headers=operator_headers, json=shipped("survey"))
    assert response.status_code == 200
    assert response.json["valid"] is True and response.json["name"] == "survey"


def test_names_are_per_owner_so_nobody_learns_or_takes_anothers(
    client, operator_headers, make_user, login, admin_headers
):
    alices = client.post(BASE, headers=operator_headers, json=_doc()).json
    bob = login(make_user("operator"))
    assert client.get(f"{BASE}/greet", headers=bob).status_code == 404
    # Bob's own "greet": no 409 that would tell him Alice has one, and nothing of hers.
    bobs = client.post(
        BASE, headers=bob, json=_doc(hello={"type": "send", "params": {"text": "Halo dari Bob"}})
    )
    assert bobs.status_code == 200 and bobs.json["created"], bobs.json
    assert bobs.json["id"] != alices["id"] and bobs.json["version"] == 1
    mine = client.get(f"{BASE}/greet", headers=operator_headers).json
    assert (mine["id"], mine["version"], mine["doc"]["nodes"]["hello"]["params"]["text"]) == (
        alices["id"],
        1,
        "Halo",
    )
    assert client.get(f"{BASE}/{alices['id']}", headers=bob).status_code == 404
    assert client.delete(f"{BASE}/greet", headers=bob).status_code == 204
    assert client.get(f"{BASE}/greet", headers=operator_headers).status_code == 200
    # An admin sees both and tells them apart by id.
    client.post(BASE, headers=bob, json=_doc())
    ambiguous = client.get(f"{BASE}/greet", headers=admin_headers)
    assert ambiguous.status_code == 409 and ambiguous.json["code"] == "workflow_name_ambiguous"
    assert client.get(f"{BASE}/{alices['id']}", headers=admin_headers).json["id"] == alices["id"]


def test_two_owners_hooks_of_one_name_are_told_apart_by_their_tokens(
    client, operator_headers, make_user, login
):
    tokens = {}
    for who, headers in (("alice", operator_headers), ("bob", login(make_user("operator")))):
        doc = {
            "name": "note",
            "trigger": {"type": "hook"},
            "start": "keep",
            "nodes": {"keep": {"type": "respond", "params": {"json": {"who": who}}}},
        }
        created = client.post(f"{BASE}?enable=true", headers=headers, json=doc)
        assert created.status_code == 200 and created.json["created"], created.json
        tokens[who] = created.json["hook_token"]
    for who, token in tokens.items():
        answer = client.post("/api/v1/hooks/note", headers={"X-Kabar-Token": token}, json={})
        assert answer.status_code == 200 and answer.json == {"who": who}, answer.json
    wrong = client.post("/api/v1/hooks/note", headers={"X-Kabar-Token": "kwh_nope"}, json={})
    assert wrong.status_code == 401


def test_enable_disable_and_delete(client, operator_headers):
    client.post(BASE, headers=operator_headers, json=_doc())
    assert client.post(f"{BASE}/greet/enable", headers=operator_headers).json["enabled"]
    assert not client.post(f"{BASE}/greet/disable", headers=operator_headers).json["enabled"]
    assert client.delete(f"{BASE}/greet", headers=operator_headers).status_code == 204
    assert client.get(f"{BASE}/greet", headers=operator_headers).status_code == 404


def _wait_doc():
    return {
        "name": "later",
        "start": "pause",
        "nodes": {
            "pause": {"type": "delay", "params": {"seconds": 3600}, "next": {"next": "done"}},
            "done": {"type": "end"},
        },
    }


def test_manual_run_cancel_and_no_delete_while_waiting(client, operator_headers):
    client.post(BASE, headers=operator_headers, json=_wait_doc())
    started = client.post(f"{BASE}/later/runs", headers=operator_headers, json={"input": {"x": 1}})
    assert started.status_code == 201, started.json
    run = started.json
    assert run["status"] == "waiting" and run["wait"]["kind"] == "until"
    refused = client.delete(f"{BASE}/later", headers=operator_headers)
    assert refused.status_code == 409 and refused.json["code"] == "workflow_has_open_runs"
    cancelled = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=operator_headers)
    assert cancelled.json["status"] == "cancelled"
    again = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=operator_headers)
    assert again.status_code == 409 and again.json["code"] == "run_not_open"
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=operator_headers).json
    assert detail["trigger"]["input"] == {"x": 1} and detail["trigger"]["type"] == "manual"
    assert client.delete(f"{BASE}/later", headers=operator_headers).status_code == 204


def test_a_failed_run_is_retried_from_the_failed_node(client, operator_headers, session_id):
    doc = {
        "name": "fails",
        "start": "fetch",
        "nodes": {
            "fetch": {"type": "http_request", "params": {"url": "http://127.0.0.1:9/"}},
        },
    }
    client.post(BASE, headers=operator_headers, json=doc)
    run = client.post(f"{BASE}/fails/runs", headers=operator_headers, json={}).json
    assert run["status"] == "failed" and run["current"] == "fetch"
    assert "loopback" in run["error"]  # the SSRF guard refused it
    retried = client.post(f"/api/v1/runs/{run['id']}/retry", headers=operator_headers)
    assert retried.status_code == 200 and retried.json["status"] == "failed"
    assert [step["node"] for step in retried.json["trace"]] == ["fetch", "fetch"]
    ok_run = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=operator_headers)
    assert ok_run.status_code == 409


def test_runs_list_filters(client, operator_headers):
    client.post(BASE, headers=operator_headers, json=_wait_doc())
    client.post(f"{BASE}/later/runs", headers=operator_headers, json={})
    client.post(f"{BASE}/later/runs", headers=operator_headers, json={})
    listed = client.get(
        "/api/v1/runs?status=waiting&workflow=later", headers=operator_headers
    ).json["items"]
    assert len(listed) == 2 and all(r["workflow"] == "later" for r in listed)
    assert client.get("/api/v1/runs?status=completed", headers=operator_headers).json["items"] == []
    bad = client.get("/api/v1/runs?status=sleeping", headers=operator_headers)
    assert bad.status_code == 422


# -- hooks --------------------------------------------------------------------------------


def _otp(client, headers):
    uploaded = client.post(f"{BASE}?enable=true", headers=headers, json=shipped("otp"))
    assert uploaded.status_code == 200, uploaded.json
    return uploaded.json["hook_token"]


def test_a_hook_runs_the_workflow_and_answers_with_respond(client, operator_headers, session_id):
    token = _otp(client, operator_headers)
    assert token.startswith("kwh_")
    answer = client.post(
        "/api/v1/hooks/otp",
        headers={"X-Kabar-Token": token},
        json={"phone": "0812-3456-7890", "code": "123456"},
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.json["status"] == "queued" and answer.json["message_id"]
    queued = db.session.scalar(sa.select(OutboxMessage))
    assert queued.id == answer.json["message_id"] and queued.source == "workflow"
    assert "123456" in queued.payload["text"] and queued.priority == 0
    assert queued.expires_at is not None
    run = db.session.scalar(sa.select(WorkflowRun))
    assert answer.headers["X-Kabar-Run"] == run.id and run.status == "completed"
    # The token is shown once: not in the listing or the detail.
    listed = client.get(f"{BASE}/otp", headers=operator_headers).json
    assert "hook_token" not in listed and listed["hook"]["token_prefix"] == token[:12]


def test_a_hook_with_a_bad_body_gets_the_workflows_own_answer(client, operator_headers, session_id):
    token = _otp(client, operator_headers)
    answer = client.post("/api/v1/hooks/otp", headers={"X-Kabar-Token": token}, json={})
    assert answer.status_code == 422 and "phone" in answer.json["error"]


def test_hooks_refuse_wrong_tokens_and_disabled_workflows_alike(
    client, operator_headers, session_id
):
    token = _otp(client, operator_headers)
    for headers, name in (
        ({}, "otp"),
        ({"X-Kabar-Token": "kwh_wrong"}, "otp"),
        ({"X-Kabar-Token": token}, "nope"),
    ):
        answer = client.post(f"/api/v1/hooks/{name}", headers=headers, json={})
        assert answer.status_code == 401 and answer.json["code"] == "hook_unauthorized"
    client.post(f"{BASE}/otp/disable", headers=operator_headers)
    answer = client.post("/api/v1/hooks/otp", headers={"X-Kabar-Token": token}, json={})
    assert answer.status_code == 401
    client.post(f"{BASE}/otp/enable", headers=operator_headers)
    rotated = client.post(f"{BASE}/otp/hook-token", headers=operator_headers).json
    old = client.post("/api/v1/hooks/otp", headers={"X-Kabar-Token": token}, json={})
    assert old.status_code == 401
    new = client.post(
        "/api/v1/hooks/otp", headers={"X-Kabar-Token": rotated["hook_token"]}, json={}
    )
    assert new.status_code == 422  # the workflow's own answer: it ran


def test_a_hook_without_respond_answers_202_with_the_run(client, operator_headers):
    doc = {
        "name": "note",
        "trigger": {"type": "hook"},
        "start": "keep",
        "nodes": {
            "keep": {"type": "set", "params": {"variables": {"who": "{{ trigger.body.who }}"}}}
        },
    }
    token = client.post(f"{BASE}?enable=true", headers=operator_headers, json=doc).json[
        "hook_token"
    ]
    answer = client.post(
        "/api/v1/hooks/note", headers={"X-Kabar-Token": token}, json={"who": "Sari"}
    )
    assert answer.status_code == 202
    run = client.get(f"/api/v1/runs/{answer.json['run_id']}", headers=operator_headers).json
    assert run["status"] == "completed" and run["vars"] == {"who": "Sari"}


def test_rotating_needs_a_hook_trigger(client, operator_headers):
    client.post(BASE, headers=operator_headers, json=_doc())
    answer = client.post(f"{BASE}/greet/hook-token", headers=operator_headers)
    assert answer.status_code == 404 and answer.json["code"] == "workflow_has_no_hook"


def test_a_send_without_a_session_fails_the_step_with_a_reason(client, operator_headers):
    doc = {
        "name": "lost",
        "start": "hello",
        "nodes": {"hello": {"type": "send", "params": {"to": "0812-3456-7890", "text": "Halo"}}},
    }
    client.post(BASE, headers=operator_headers, json=doc)
    run = client.post(f"{BASE}/lost/runs", headers=operator_headers, json={}).json
    assert run["status"] == "failed" and "session" in run["error"]


def test_reload_reads_the_folder(app, client, admin_headers, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOWS_DIR", str(tmp_path))
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "survey.json").write_text(json.dumps(shipped("survey")))
    (tmp_path / "broken.json").write_text("{")
    report = client.post(f"{BASE}/reload", headers=admin_headers).json
    assert [a["name"] for a in report["added"]] == ["survey"]
    assert report["errors"][0]["file"] == "broken.json"
    listed = client.get(f"{BASE}/survey", headers=admin_headers).json
    assert listed["source"] == "file" and listed["path"] == "team/survey.json"
    assert listed["owner"] is None and listed["enabled"] is False
    again = client.post(f"{BASE}/reload", headers=admin_headers).json
    assert [a["name"] for a in again["unchanged"]] == ["survey"]


def test_a_runs_end_is_an_event(client, admin_headers):
    doc = {
        "name": "fails",
        "start": "fetch",
        "nodes": {"fetch": {"type": "http_request", "params": {"url": "http://127.0.0.1:9/"}}},
    }
    client.post(BASE, headers=admin_headers, json=doc)
    run = client.post(f"{BASE}/fails/runs", headers=admin_headers, json={}).json
    log = client.get("/api/v1/events/log?type=workflow.failed", headers=admin_headers).json
    (event,) = log["items"]
    assert event["data"]["run_id"] == run["id"] and event["data"]["node"] == "fetch"
    assert "loopback" in event["data"]["error"]
    client.post(f"/api/v1/runs/{run['id']}/retry", headers=admin_headers)
    again = client.get("/api/v1/events/log?type=workflow.failed", headers=admin_headers).json
    assert [e["data"]["run_id"] for e in again["items"]] == [run["id"], run["id"]]
