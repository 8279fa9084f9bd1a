"""The registry of runtime commands: ``@handles(kind)`` files a handler under its kind.

``pool=True`` runs it on the look-up pool (it may wait on the network and never starts or
stops a transport: logout and pair codes too, which can take seconds on a real client,
longer than the control thread may go without renewing its lease); the others run on the
control thread, one at a time. Handlers raise TransportError (or ValueError/InvalidPhone
for bad input); the runtime turns that into the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from server.models import RuntimeCommand

if TYPE_CHECKING:
    from server.runtime.process import Runtime

Handler = Callable[["Runtime", RuntimeCommand], Any]
HANDLERS: dict[str, Handler] = {}
ON_POOL: set[str] = set()


def handles(kind: str, *, pool: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[kind] = handler
        if pool:
            ON_POOL.add(kind)
        return handler

    return register
