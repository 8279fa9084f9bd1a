"""Fixtures for webhook tests: a verifying receiver, and endpoints made for it."""

from __future__ import annotations

import pytest

from tests.server.webhooks.receiver import running_receiver


@pytest.fixture
def receiver(app, monkeypatch):
    yield from running_receiver(app, monkeypatch)


@pytest.fixture
def make_hook(client, receiver):
    """make_hook(headers, session_id, **fields) -> the created webhook (secret included)."""

    def make(headers: dict, session_id: str | None, **fields) -> dict:
        body = {"url": receiver.url, "session_id": session_id, **fields}
        return receiver.register(client.post("/api/v1/webhooks", headers=headers, json=body))

    return make
