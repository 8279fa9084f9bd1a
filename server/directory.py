"""What a session knows about the groups and people it talks to, from the database alone.

Group names come from ``chat_states.name`` of the session's group chats: kept when the
groups API lists, creates or changes a group, and from the ``group.joined`` and
``group.updated`` events the transport reports (``learn``, fed by ``eventlog.record``
for every stored event). Nothing here asks the live transport, so a send that names a
group is resolved inside the request, whether the runtime is up or not.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.events import Event, GroupJoined, GroupUpdated
from server.models import ChatState, WaSession, db
from server.whatsapp.jids import GROUP_SERVER

NAME_MAX = 256  # chat_states.name


def _fold(name: str) -> str:
    """Names compare case-insensitively, Unicode included (SQLite's lower() is ASCII)."""
    return " ".join(name.split()).casefold()


def groups_named(session_id: str, name: str) -> list[dict[str, str]]:
    """The session's groups whose name is ``name`` (exact, case-insensitive, runs of
    spaces as one), as ``{"jid", "name"}``; a session is in at most a few thousand
    groups, so they are compared here rather than with the database's own lower()."""
    wanted = _fold(name)
    if not wanted:
        return []
    rows = db.session.execute(sa.select(ChatState.chat_jid, ChatState.name).where(
        ChatState.session_id == session_id, ChatState.name.is_not(None),
        ChatState.chat_jid.like(f"%@{GROUP_SERVER}")).order_by(ChatState.chat_jid)).all()
    return [{"jid": r.chat_jid, "name": r.name} for r in rows if _fold(r.name) == wanted]


def remember_group_name(session_id: str, jid: str, name: str) -> None:
    """Keep a group's name (in the caller's transaction); made on first need, once even
    when two writers race."""
    name = name[:NAME_MAX]
    query = sa.select(ChatState).where(ChatState.session_id == session_id,
                                       ChatState.chat_jid == jid)
    state = db.session.scalar(query)
    if state is None:
        try:
            with db.session.begin_nested():
                db.session.add(ChatState(session_id=session_id, chat_jid=jid, name=name))
            return
        except IntegrityError:
            state = db.session.scalar(query)
    if state is not None and state.name != name:
        state.name = name


def learn(event: Event, session: WaSession | None) -> None:
    """What a stored event teaches about the session's groups (in the caller's
    transaction). Called for every event ``eventlog.record`` stores."""
    if session is None:
        return
    if isinstance(event, GroupJoined | GroupUpdated) and event.name:
        remember_group_name(session.id, event.group.jid, event.name)
