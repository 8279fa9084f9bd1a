"""The web's facade over live look-ups: every command it can send is one the runtime
answers, so a renamed handler fails here rather than as a 409 unknown_command."""

from __future__ import annotations

import pytest

from server.runtime import handlers, live


def test_every_command_the_web_sends_has_a_handler():
    sent = {
        value for name, value in vars(live).items() if name.isupper() and isinstance(value, str)
    }
    assert sent, "the facade names its commands"
    assert sent <= set(handlers.HANDLERS)


def test_a_group_call_takes_only_group_commands(app):
    with pytest.raises(ValueError, match="not a group command"):
        live.group("any-session", live.CHATS_MARK_READ)


def test_no_view_or_service_spells_a_command_name():
    """Outside server/runtime/, commands go through live.py (or a handler's constant):
    a literal name there is one a renamed handler would silently stop answering."""
    import re
    from pathlib import Path

    import server

    root = Path(server.__file__).parent
    literal = re.compile(r"commands\.(call|submit)\(\s*[\"']")
    spelled = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "runtime" not in path.relative_to(root).parts[:1] and literal.search(path.read_text())
    ]
    assert spelled == []


def test_lookups_need_a_connected_session(client, operator_headers, runtime):
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "idle", "transport": "sandbox", "auto_start": False},
    ).json
    response = client.get(f"/api/v1/sessions/{created['id']}/devices", headers=operator_headers)
    assert response.status_code == 409 and response.json["code"] == "session_not_paired"
    fault = client.post(
        f"/api/v1/sandbox/sessions/{created['id']}/faults",
        headers=operator_headers,
        json={"kind": "disconnect"},
    )
    assert fault.status_code == 503 and fault.json["code"] == "session_not_running"
