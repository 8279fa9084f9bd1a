"""The ticket nodes against the real helpdesk: the engine, a LocalContext whose
``tickets`` is ``server.tickets.host.handle``, and the database. The host's refusals
(KabarError codes) become the nodes' outputs."""

from __future__ import annotations

from nodes import Engine, LocalContext, Workflow, match_message
from server.tickets import host, lifecycle, staff
from server.tickets.actors import Actor
from tests.server.tickets.conftest import REPORTER, STRANGER, TBO_PHONE

HELPDESK = Workflow.from_dict(
    {
        "name": "helpdesk",
        "triggers": [
            {"type": "message", "command": ["#request"]},
            {"type": "message", "command": ["cek"]},
            {"type": "message", "command": ["#start"]},
        ],
        "start": "route",
        "nodes": {
            "route": {
                "type": "switch",
                "params": {
                    "cases": [
                        {"when": "trigger.command == '#request'", "output": "request"},
                        {"when": "trigger.command == 'cek'", "output": "cek"},
                    ]
                },
                "next": {"request": "create", "cek": "lookup", "default": "start"},
            },
            "create": {
                "type": "create_ticket",
                "params": {"text": "{{ trigger.rest }}"},
                "next": {"created": "thanks", "refused": "say_code", "invalid": "say_code"},
            },
            "thanks": {"type": "send", "params": {"text": "Nomor: {{ create.ticket.number }}"}},
            "lookup": {
                "type": "lookup_ticket",
                "params": {"number": "{{ args[0] }}"},
                "next": {"found": "status", "missing": "say_code", "forbidden": "say_code"},
            },
            "status": {
                "type": "send",
                "params": {
                    "text": "{{ lookup.ticket.status }}: {{ lookup.ticket.last_update.note }}"
                },
            },
            "start": {
                "type": "update_ticket",
                "params": {"number": "{{ args[0] }}", "action": "start"},
                "next": {
                    "updated": "status_after",
                    "missing": "say_code",
                    "forbidden": "say_code",
                    "invalid": "say_code",
                },
            },
            "status_after": {"type": "send", "params": {"text": "{{ start.ticket.status }}"}},
            "say_code": {
                "type": "send",
                "params": {"text": "{{ (create or lookup or start).code }}"},
            },
        },
    }
)


def _say(desk, sender: str, text: str) -> list[str]:
    """One message from ``sender``: the texts the workflow sent back."""
    ctx = LocalContext(tickets=host.handle)
    message = desk.message(sender=sender, text=text)
    incoming = {
        "chat": sender,
        "sender": sender,
        "session": desk.session.id,
        "message_id": message.wa_id,
        "text": text,
    }
    trigger = next(t for t in (match_message(t, incoming) for t in HELPDESK.triggers) if t)
    run = Engine().start(HELPDESK, trigger, ctx)
    assert run.status == "completed", run.error
    return [sent["text"] for sent in ctx.sent]


def test_report_check_and_refusals_through_the_nodes(desk):
    [thanks] = _say(desk, REPORTER, "#request lampu aula mati")
    number = thanks.removeprefix("Nomor: ")
    assert _say(desk, REPORTER, f"cek {number}") == ["new: lampu aula mati"]
    assert _say(desk, REPORTER, "cek BRT0000001") == ["ticket_not_found"]
    assert _say(desk, STRANGER, f"cek {number}") == ["ticket_not_allowed"]
    assert _say(desk, REPORTER, f"#start {number}") == ["ticket_not_allowed"]
    assert _say(desk, REPORTER, "#request") == ["validation_error"]
    lifecycle.assign(lifecycle.find(number), staff.get(desk.tbo.id), Actor.system())
    assert _say(desk, TBO_PHONE, f"#start {number}") == ["in_progress"]
    assert _say(desk, TBO_PHONE, f"#start {number}") == ["invalid_transition"]
