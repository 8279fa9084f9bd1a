"""What the runtime does for each command the web sends (see ../commands.py), one module
per topic; each files its handlers in ``registry`` with ``@handles(kind)``. The runtime
looks a command up in ``HANDLERS`` and runs it on the look-up pool when its kind is in
``ON_POOL`` (registry.py says which go there and why).

Importing this package imports every topic module, so every handler is registered
before the runtime claims its first command.
"""

from server.runtime.handlers import chats, groups, lookups, sandbox_controls
from server.runtime.handlers.registry import HANDLERS, ON_POOL, Handler, handles

__all__ = [
    "HANDLERS",
    "ON_POOL",
    "Handler",
    "chats",
    "groups",
    "handles",
    "lookups",
    "sandbox_controls",
]
