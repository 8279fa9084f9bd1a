"""The built-in nodes, one module each with its parameters beside its code.

The helpdesk's ticket nodes (``create_ticket``, ``assign_ticket``, ``update_ticket``,
``lookup_ticket``, ``list_tickets``, ``lookup_person``) reach the gateway's helpdesk
through ``Context.tickets``; what they share is in ``_helpdesk.py``.
"""

from nodes.builtin.assign_ticket import AssignTicket
from nodes.builtin.branch import Branch
from nodes.builtin.call_workflow import CallWorkflow
from nodes.builtin.create_ticket import CreateTicket
from nodes.builtin.delay import Delay
from nodes.builtin.end import End
from nodes.builtin.http_request import HttpRequest
from nodes.builtin.list_tickets import ListTickets
from nodes.builtin.lookup_person import LookupPerson
from nodes.builtin.lookup_ticket import LookupTicket
from nodes.builtin.respond import Respond
from nodes.builtin.send import Send
from nodes.builtin.set_variables import SetVariables
from nodes.builtin.switch import Switch
from nodes.builtin.update_ticket import UpdateTicket
from nodes.builtin.wait_for_reply import WaitForReply

BUILTINS = (
    Send,
    WaitForReply,
    Delay,
    Branch,
    Switch,
    SetVariables,
    HttpRequest,
    Respond,
    CallWorkflow,
    End,
    CreateTicket,
    AssignTicket,
    UpdateTicket,
    LookupTicket,
    ListTickets,
    LookupPerson,
)

__all__ = [
    "BUILTINS",
    "AssignTicket",
    "Branch",
    "CallWorkflow",
    "CreateTicket",
    "Delay",
    "End",
    "HttpRequest",
    "ListTickets",
    "LookupPerson",
    "LookupTicket",
    "Respond",
    "Send",
    "SetVariables",
    "Switch",
    "UpdateTicket",
    "WaitForReply",
]
