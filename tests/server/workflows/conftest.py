"""Helpers for workflow tests: upload a workflow, speak as a sandbox contact, read what
the sandbox received."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.models import SandboxDelivery, db

WORKFLOWS = Path(__file__).resolve().parents[3] / "workflows"
CONTACT = "6281234567890"


def shipped(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


@pytest.fixture
def upload(client):
    def upload(headers, doc, *, enable=True, status=200):
        response = client.post(f"/api/v1/workflows?enable={'true' if enable else 'false'}",
                               headers=headers, json=doc)
        assert response.status_code == status, response.json
        return response.json
    return upload


@pytest.fixture
def say(client):
    def say(headers, session_id, text, sender=CONTACT, **extra):
        response = client.post(f"/api/v1/sandbox/sessions/{session_id}/messages",
                               headers=headers,
                               json={"from": sender, "name": "Budi", "text": text, **extra})
        assert response.status_code == 201, response.json
    return say


def received(session_id, to=None) -> list[str]:
    """What the sandbox's virtual contacts got from the session, oldest first."""
    query = sa.select(SandboxDelivery).where(SandboxDelivery.session_id == session_id)
    rows = db.session.scalars(query.order_by(SandboxDelivery.id)).all()
    db.session.rollback()
    return [row.content.get("text") or row.content.get("caption") or row.kind
            for row in rows if to is None or row.to_jid.startswith(to)]
