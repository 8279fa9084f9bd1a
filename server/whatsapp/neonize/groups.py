"""Groups: group notifications as events, and the group calls."""

from __future__ import annotations

import logging
from typing import Any

from server.events import (
    Event,
    GroupJoined,
    GroupLeft,
    GroupParticipants,
    GroupUpdated,
    Party,
)
from server.whatsapp.neonize.common import _logged, _now, _when
from server.whatsapp.neonize.errors import _transport_error
from server.whatsapp.neonize.jids import _is_user, _jid, _jid_str
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.neonize.parties import _me_party
from server.whatsapp.transport import (
    GroupInfo,
    Identity,
    TransportError,
)

log = logging.getLogger(__name__)


class GroupEvents:
    """Group notification conversion (mixed into ``Inbound``)."""

    def joined_group(self, ev: Any, me: Identity | None) -> GroupJoined:
        """This account is in a new group: it created it (CreateKey set), joined by link
        or was added (``Sender``, when neonize passes it on)."""
        info = ev.GroupInfo
        self._learn(info.Participants)
        if ev.HasField("Sender") and ev.Sender.User:
            by: Party | None = self.party(
                ev.Sender, ev.SenderPN if ev.HasField("SenderPN") else None
            )
        elif ev.CreateKey and me is not None:
            by = _me_party(me)
        else:
            by = None
        name = info.GroupName.Name
        return GroupJoined(
            group=Party(jid=_jid_str(info.JID), name=name or None),
            name=name,
            timestamp=_now(),
            by=by,
        )

    def group_info(self, ev: Any, me: Identity | None) -> list[Event]:
        """What one group notification says, as events: group.updated for name, topic,
        announce and locked; group.participants per list (this account's own joining is
        JoinedGroupEv's); group.left when this account is in Leave or the group is gone."""
        mine = ({me.jid, me.lid} - {None}) if me is not None else set()

        def who(jid: Any) -> Party:  # this account by its identity, anyone else resolved
            return _me_party(me) if me is not None and _jid_str(jid) in mine else self.party(jid)

        group = Party(jid=_jid_str(ev.JID), name=ev.Name.Name if ev.HasField("Name") else None)
        by = who(ev.Sender) if ev.HasField("Sender") and ev.Sender.User else None
        at = _when(ev.Timestamp)
        changes: dict[str, Any] = {}
        if ev.HasField("Name"):
            changes["name"] = ev.Name.Name
        if ev.HasField("Topic"):
            changes["topic"] = "" if ev.Topic.TopicDeleted else ev.Topic.Topic
        if ev.HasField("Announce"):
            changes["announce"] = ev.Announce.IsAnnounce
        if ev.HasField("Locked"):
            changes["locked"] = ev.Locked.isLocked
        events: list[Event] = []
        if changes:
            events.append(GroupUpdated(group=group, timestamp=at, by=by, **changes))
        lists = (
            ("Join", "join" if ev.JoinReason == "invite" else "add"),
            ("Leave", "remove"),
            ("Promote", "promote"),
            ("Demote", "demote"),
        )
        for field, action in lists:
            people = [
                who(j)
                for j in getattr(ev, field)
                if not (field in ("Join", "Leave") and _jid_str(j) in mine)
            ]
            if people:
                events.append(
                    GroupParticipants(
                        group=group, action=action, timestamp=at, by=by, participants=tuple(people)
                    )
                )
        if any(_jid_str(j) in mine for j in ev.Leave):
            gone_by_itself = by is None or by.jid in mine
            events.append(
                GroupLeft(
                    group=group, timestamp=at, by=by, reason="left" if gone_by_itself else "removed"
                )
            )
        elif ev.HasField("Delete") and ev.Delete.Deleted:
            events.append(GroupLeft(group=group, timestamp=at, by=by, reason="deleted"))
        return events


class Groups:
    """The transport's group calls and handlers."""

    def _on_joined_group(self, client: Any, ev: Any) -> None:
        with _logged("joined_group"):
            self.emit(self._inbound.joined_group(ev, self._identity))

    def _on_group_info(self, client: Any, ev: Any) -> None:
        with _logged("group_info"):
            for event in self._inbound.group_info(ev, self._identity):
                self.emit(event)

    # --- groups -----------------------------------------------------------------------

    def group_info(self, jid: str) -> GroupInfo:
        return self._group(self._call("group_info", "get_group_info", _jid(jid)))

    def create_group(self, name: str, participants: list[str]) -> GroupInfo:
        return self._group(
            self._call("create_group", "create_group", name, [_jid(p) for p in participants])
        )

    def set_group_name(self, jid: str, name: str) -> None:
        self._call("set_group_name", "set_group_name", _jid(jid), name)

    def set_group_topic(self, jid: str, topic: str) -> None:
        # Empty previous/new ids: whatsmeow looks the current topic id up itself.
        self._call("set_group_topic", "set_group_topic", _jid(jid), "", "", topic)

    def set_group_announce(self, jid: str, announce: bool) -> None:
        self._call("set_group_announce", "set_group_announce", _jid(jid), announce)

    def set_group_locked(self, jid: str, locked: bool) -> None:
        self._call("set_group_locked", "set_group_locked", _jid(jid), locked)

    def group_invite_link(self, jid: str, reset: bool = False) -> str:
        return self._call("group_invite_link", "get_group_invite_link", _jid(jid), revoke=reset)

    def join_group(self, link: str) -> str:
        code = link.strip().rstrip("/").rsplit("/", 1)[-1]
        return _jid_str(self._call("join_group", "join_group_with_link", code))

    def update_participants(self, jid: str, participants: list[str], action: str) -> list[dict]:
        try:
            change = _nz().enum.ParticipantChange[action.upper()]
        except KeyError:
            raise TransportError(
                f"Unknown participant action {action!r}; use add, remove, promote or demote.",
                code="invalid_action",
                permanent=True,
            ) from None
        answers = self._call(
            "update_participants",
            "update_group_participants",
            _jid(jid),
            [_jid(p) for p in participants],
            change,
        )
        return [
            {
                "jid": _jid_str(p.JID) or _jid_str(p.PhoneNumber),
                "ok": not p.Error,
                "error": str(p.Error) if p.Error else None,
            }
            for p in answers
        ]

    def leave_group(self, jid: str) -> None:
        self._call("leave_group", "leave_group", _jid(jid))

    def _call(self, action: str, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self._require_connected()
        try:
            return getattr(client, method)(*args, **kwargs)
        except Exception as exc:
            raise _transport_error(exc, action) from exc

    def _group(self, g: Any) -> GroupInfo:
        participants = tuple(
            {
                "jid": _jid_str(p.JID),
                "phone": p.PhoneNumber.User or (p.JID.User if _is_user(p.JID) else None),
                "lid": _jid_str(p.LID) or None,
                "admin": bool(p.IsAdmin or p.IsSuperAdmin),
                "super_admin": bool(p.IsSuperAdmin),
                "name": p.DisplayName or None,
            }
            for p in g.Participants
        )
        return GroupInfo(
            jid=_jid_str(g.JID),
            name=g.GroupName.Name,
            topic=g.GroupTopic.Topic,
            owner=_jid_str(g.OwnerJID) or None,
            announce=g.GroupAnnounce.IsAnnounce,
            locked=g.GroupLocked.isLocked,
            participants=participants,
        )
