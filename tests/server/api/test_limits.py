"""Limits on what one request may cost: body size, workflow size, template rendering.
Each is a clear 4xx (or a failed run with its reason), each set by a KABAR_* setting."""

from __future__ import annotations

import base64
import os

import sqlalchemy as sa

from nodes import templating
from server.models import OutboxMessage, WorkflowRun, db


def test_a_huge_body_is_refused_before_it_is_read(client):
    body = b'{"username": "admin", "password": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"


def test_a_media_upload_may_be_larger_than_other_bodies(
    client, operator_headers, fast, app, monkeypatch
):
    data = os.urandom(3 * 1024 * 1024)
    document = {
        "to": "081234567890",
        "type": "document",
        "media": {"base64": base64.b64encode(data).decode(), "filename": "a.bin"},
    }
    sent = client.post(f"/api/v1/sessions/{fast}/messages", headers=operator_headers, json=document)
    assert sent.status_code == 202, sent.json
    assert db.session.scalar(sa.select(OutboxMessage.payload)).get("media")["size"] == len(data)
    # The allowance follows the media cap.
    monkeypatch.setitem(app.config["KABAR"], "FETCH_MAX_BYTES", 1024 * 1024)
    refused = client.post(
        f"/api/v1/sessions/{fast}/messages", headers=operator_headers, json=document
    )
    assert refused.status_code == 413 and refused.json["code"] == "payload_too_large"
    # Other routes keep the general limit.
    big_label = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "x" * (3 * 1024 * 1024), "transport": "sandbox"},
    )
    assert big_label.status_code == 413


def _workflow(nodes: int, text: str = "Halo") -> dict:
    steps = {
        f"n{i}": {
            "type": "set",
            "params": {"variables": {"v": text}},
            "next": {"next": f"n{i + 1}"},
        }
        for i in range(nodes - 1)
    }
    steps[f"n{nodes - 1}"] = {"type": "end"}
    return {"name": "big", "trigger": {"type": "manual"}, "start": "n0", "nodes": steps}


def test_a_workflow_too_large_is_refused_before_it_is_validated(
    client, operator_headers, app, monkeypatch
):
    assert (
        client.post("/api/v1/workflows", headers=operator_headers, json=_workflow(50)).status_code
        == 200
    )
    too_many = client.post("/api/v1/workflows", headers=operator_headers, json=_workflow(1001))
    assert too_many.status_code == 413 and too_many.json["code"] == "workflow_too_large"
    assert "1001 nodes" in too_many.json["message"]
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOW_MAX_BYTES", 2000)
    too_big = client.post(
        "/api/v1/workflows", headers=operator_headers, json=_workflow(5, text="x" * 3000)
    )
    assert too_big.status_code == 413 and too_big.json["code"] == "workflow_too_large"


def test_the_template_limits_come_from_the_settings(app):
    settings = app.config["KABAR"]
    assert (templating.LIMITS.seconds, templating.LIMITS.output, templating.LIMITS.loop) == (
        settings["TEMPLATE_TIMEOUT"],
        settings["TEMPLATE_MAX_OUTPUT"],
        settings["TEMPLATE_MAX_LOOP"],
    )


def test_a_hook_whose_template_runs_away_fails_at_once(client, operator_headers):
    doc = {
        "name": "loops",
        "trigger": {"type": "hook"},
        "start": "spin",
        "nodes": {
            "spin": {
                "type": "set",
                "params": {
                    "variables": {
                        "v": (
                            "{% for i in range(9999) %}{% for j in range(9999) %}"
                            "{% for k in range(9999) %}"
                            "{% endfor %}{% endfor %}{% endfor %}"
                        )
                    }
                },
                "next": {"next": "done"},
            },
            "done": {"type": "respond", "params": {"status": 200, "json": {"ok": True}}},
        },
    }
    uploaded = client.post("/api/v1/workflows?enable=true", headers=operator_headers, json=doc)
    assert uploaded.status_code == 200, uploaded.json
    answer = client.post(
        "/api/v1/hooks/loops", headers={"X-Kabar-Token": uploaded.json["hook_token"]}, json={}
    )
    assert answer.status_code < 500
    run = db.session.scalar(sa.select(WorkflowRun))
    assert run.status == "failed" and "loops more than" in run.error
