"""Helpers for workflow tests: upload a workflow, speak as a sandbox contact, read what
the sandbox received."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.models import SandboxDelivery, db
from tests.server.conftest import unpaced

WORKFLOWS = Path(__file__).resolve().parents[3] / "workflows"
CONTACT = "6281234567890"


def shipped(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def received(session_id, to=None) -> list[str]:
    """What the sandbox's virtual contacts got from the session, oldest first."""
    query = sa.select(SandboxDelivery).where(SandboxDelivery.session_id == session_id)
    rows = db.session.scalars(query.order_by(SandboxDelivery.id)).all()
    db.session.rollback()
    return [
        row.content.get("text") or row.content.get("caption") or row.kind
        for row in rows
        if to is None or row.to_jid.startswith(to)
    ]


@pytest.fixture
def sandbox_session(sandbox_session):
    """The shared sandbox session, without pacing: these tests are about what is sent."""
    return unpaced(sandbox_session)
