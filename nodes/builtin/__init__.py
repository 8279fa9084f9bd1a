"""The built-in nodes, one module each with its parameters beside its code.

The helpdesk's ticket nodes (``create_ticket``, ``assign_ticket``, ``update_ticket``,
``lookup_ticket`` with outputs ``found`` / ``missing``) come with the helpdesk and its
data model; they will register here the same way.
"""

from nodes.builtin.branch import Branch
from nodes.builtin.call_workflow import CallWorkflow
from nodes.builtin.delay import Delay
from nodes.builtin.end import End
from nodes.builtin.http_request import HttpRequest
from nodes.builtin.respond import Respond
from nodes.builtin.send import Send
from nodes.builtin.set_variables import SetVariables
from nodes.builtin.switch import Switch
from nodes.builtin.wait_for_reply import WaitForReply

BUILTINS = (Send, WaitForReply, Delay, Branch, Switch, SetVariables, HttpRequest, Respond,
            CallWorkflow, End)

__all__ = ["BUILTINS", "Branch", "CallWorkflow", "Delay", "End", "HttpRequest", "Respond",
           "Send", "SetVariables", "Switch", "WaitForReply"]
