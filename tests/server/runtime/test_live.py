"""The web's facade over live look-ups: every command it can send is one the runtime
answers, so a renamed handler fails here rather than as a 409 unknown_command."""

from __future__ import annotations

import pytest

from server.runtime import handlers, live


def test_every_command_the_web_sends_has_a_handler():
    sent = {value for name, value in vars(live).items()
            if name.isupper() and isinstance(value, str)}
    assert sent, "the facade names its commands"
    assert sent <= set(handlers.HANDLERS)


def test_a_group_call_takes_only_group_commands(app):
    with pytest.raises(ValueError, match="not a group command"):
        live.group("any-session", live.CHATS_MARK_READ)
