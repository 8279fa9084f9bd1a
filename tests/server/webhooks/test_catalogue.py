"""The event catalogue: complete, documented, and docs/events.md in step with it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from server import events
from server.events import (
    CATALOGUE,
    GroupJoined,
    GroupLeft,
    GroupParticipants,
    GroupUpdated,
    Party,
    PollVote,
    to_wire,
)

DOCS = Path(__file__).parents[3] / "docs" / "events.md"


def test_docs_list_every_event():
    assert events.render_markdown() in DOCS.read_text(), (
        "regenerate docs/events.md's table from events.render_markdown()"
    )


def test_every_event_is_frozen_documented_and_named_once():
    for name, cls in CATALOGUE.items():
        assert cls.type == name
        assert cls.__dataclass_params__.frozen, name
        assert (cls.__doc__ or "").strip() and not cls.__doc__.startswith(cls.__name__ + "("), (
            f"{name} needs a docstring saying when it fires"
        )
    assert {
        "poll.vote",
        "group.joined",
        "group.left",
        "group.participants",
        "group.updated",
    } <= set(CATALOGUE)


def test_new_events_travel_as_json():
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    group = Party(jid="120363000000000001@g.us")
    admin = Party(jid="628111@s.whatsapp.net", phone="628111", name="Admin")
    assert to_wire(
        PollVote(poll_id="3EB0AA", chat=admin, voter=admin, options=("Ya",), timestamp=at)
    )["options"] == ["Ya"]
    assert (
        to_wire(GroupJoined(group=group, name="RT 05", timestamp=at, by=admin))["by"]["phone"]
        == "628111"
    )
    assert to_wire(GroupLeft(group=group, timestamp=at, reason="removed"))["by"] is None
    wire = to_wire(
        GroupParticipants(group=group, action="add", participants=(admin,), timestamp=at)
    )
    assert wire["participants"][0]["jid"] == "628111@s.whatsapp.net"
    assert to_wire(GroupUpdated(group=group, timestamp=at, name="RT 06"))["topic"] is None
    for cls in (PollVote, GroupJoined, GroupLeft, GroupParticipants, GroupUpdated):
        assert all(f.name != "type" for f in dataclasses.fields(cls))


def test_ticket_events_are_in_the_catalogue():
    assert {
        "ticket.created",
        "ticket.assigned",
        "ticket.started",
        "ticket.progress",
        "ticket.finished",
        "ticket.confirmed",
        "ticket.reopened",
        "ticket.status",
        "ticket.note",
    } <= set(CATALOGUE)
