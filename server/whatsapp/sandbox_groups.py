"""The sandbox's WhatsApp groups: who is in them, who is admin, their settings and links.

Groups are shared by everyone in them, so they are kept by member JID rather than per
"me": a group the session left is still there to join again by invite link, as on
WhatsApp. They live in a JSON file in the session's store folder, next to the sandbox's
device store, so they survive a runtime restart as a real device finds its groups again
on WhatsApp's servers; the folder goes when the session is deleted.

The rules follow WhatsApp where a test or a demo would notice: the creator is the
super-admin and cannot be removed or demoted; settings, invite links and participants
are for admins; name and description are open to every member unless the group is
locked; the last admin to leave hands admin to someone; the last one out ends the group.

The same rules hold for a virtual contact acting on a group (``contact=True`` only changes
whose name an error gives). What changed is answered to the caller, the transport, which
turns it into group events.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from server.whatsapp.jids import GROUP_SERVER, phone_of, split_jid
from server.whatsapp.transport import GroupInfo, TransportError

FILE_NAME = "sandbox-groups.json"
SUBJECT_MAX = 100  # WhatsApp's limits
TOPIC_MAX = 2048
INVITE_PREFIX = "https://chat.whatsapp.com/"
PARTICIPANT_ACTIONS = ("add", "remove", "promote", "demote")
_INVITE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_GROUP_USER = re.compile(r"^\d{5,24}(-\d{5,24})?$")  # 120363…, or the old phone-time form

# A participant's role, as stored: superadmin (the creator), admin or member.
ADMIN_ROLES = {"superadmin", "admin"}


class GroupStore:
    """One session's view of the sandbox groups. ``lock`` is the transport's own lock, so
    group changes and the rest of the transport never interleave."""

    def __init__(self, path: Path, *, unregistered: set[str], lock: threading.RLock):
        self.path = path
        self.unregistered = unregistered
        self.lock = lock

    # --- reading --------------------------------------------------------------------------

    def of(self, me: str) -> list[GroupInfo]:
        with self.lock:
            return [
                _value(jid, group)
                for jid, group in sorted(self._load().items())
                if me in group["participants"]
            ]

    def info(self, jid: str, me: str) -> GroupInfo:
        with self.lock:
            return _value(jid, _member_of(self._load(), jid, me))

    def peek(self, jid: str) -> dict | None:
        """The group as stored (name, participants and their roles…), whoever is in it;
        None if there is no such group."""
        with self.lock:
            return self._load().get(jid)

    # --- changing -------------------------------------------------------------------------

    def create(self, me: str, name: str, participants: list[str]) -> GroupInfo:
        _check_subject(name)
        with self.lock:
            groups = self._load()
            jid = _new_jid(groups)
            members = {me: "superadmin"}
            for participant in participants:  # WhatsApp leaves out who cannot be added
                if participant != me and split_jid(participant)[0] not in self.unregistered:
                    members[participant] = "member"
            groups[jid] = _new_group(name, owner=me, members=members)
            self._save(groups)
            return _value(jid, groups[jid])

    def edit(self, jid: str, me: str, field: str, value: object, *, contact: bool = False) -> bool:
        """Change name, topic, announce or locked, as member ``me``. True if the value is
        new (setting what is already there changes nothing)."""
        if field == "name":
            _check_subject(str(value))
        elif field == "topic" and len(str(value)) > TOPIC_MAX:
            raise TransportError(
                f"A group description has at most {TOPIC_MAX} characters.",
                code="invalid_input",
                permanent=True,
            )
        with self.lock:
            groups = self._load()
            group = _member_of(groups, jid, me, contact=contact)
            if field not in ("name", "topic") or group["locked"]:
                _require_admin(group, me, f"change the group's {field}", contact=contact)
            if group[field] == value:
                return False
            group[field] = value
            self._save(groups)
            return True

    def invite_link(self, jid: str, me: str, *, reset: bool) -> str:
        with self.lock:
            groups = self._load()
            group = _member_of(groups, jid, me)
            _require_admin(group, me, "see or reset the invite link")
            if reset or not group.get("invite"):  # a reset makes the old link useless
                group["invite"] = "".join(secrets.choice(_INVITE_ALPHABET) for _ in range(22))
                self._save(groups)
            return INVITE_PREFIX + group["invite"]

    def join(self, me: str, link: str) -> tuple[str, bool]:
        """(the group's JID, whether ``me`` is new in it)."""
        code = link.strip().removeprefix(INVITE_PREFIX).removeprefix("chat.whatsapp.com/")
        with self.lock:
            groups = self._load()
            for jid, group in groups.items():
                if code and group.get("invite") == code:
                    if me in group["participants"]:
                        return jid, False
                    group["participants"][me] = "member"
                    self._save(groups)
                    return jid, True
        raise TransportError(
            "This invite link is not valid: it was reset, or never existed.",
            code="invite_link_invalid",
            permanent=True,
        )

    def update_participants(
        self, jid: str, me: str, participants: list[str], action: str, *, contact: bool = False
    ) -> list[dict]:
        """Per participant, as WhatsApp answers: one that cannot be changed does not stop
        the others. ``me`` is whoever does it (an admin)."""
        if action not in PARTICIPANT_ACTIONS:
            raise TransportError(
                f"Unknown action {action!r}; use one of {', '.join(PARTICIPANT_ACTIONS)}.",
                code="invalid_input",
                permanent=True,
            )
        with self.lock:
            groups = self._load()
            group = _member_of(groups, jid, me, contact=contact)
            _require_admin(group, me, f"{action} participants", contact=contact)
            results = [
                {"jid": p, **self._change(group["participants"], p, action, me)}
                for p in participants
            ]
            self._save(groups)
            return results

    def leave(self, jid: str, me: str) -> None:
        with self.lock:
            groups = self._load()
            members = _member_of(groups, jid, me)["participants"]
            del members[me]
            if not members:
                del groups[jid]
            elif not ADMIN_ROLES & set(members.values()):
                members[next(iter(members))] = "admin"
            self._save(groups)

    def spoken_in(self, group_jid: str, me: str, sender: str) -> tuple[str, str, str | None]:
        """The (JID, name, change) of the group a virtual contact speaks in. A group nobody
        made yet is made now, by that contact, with this session in it, so it shows in the
        session's groups as one someone else added it to would (change "created"); a
        contact not yet in the group is made a member (change "added")."""
        text = group_jid.strip()
        jid = text if "@" in text else f"{text}@{GROUP_SERVER}"
        user, _, server = jid.partition("@")
        if server != GROUP_SERVER or not _GROUP_USER.match(user):
            raise TransportError(
                f"{group_jid!r} is not a group JID (120363…@g.us).",
                code="invalid_group_jid",
                permanent=True,
            )
        with self.lock:
            groups = self._load()
            group = groups.get(jid)
            change = None
            if group is None:
                group = groups[jid] = _new_group(
                    f"Sandbox group {user[-4:]}",
                    owner=sender,
                    members={sender: "superadmin", me: "member"},
                )
                change = "created"
            elif me not in group["participants"]:
                raise TransportError(
                    f"This session is not in group {jid}; join it again "
                    "before contacts can speak there.",
                    code="not_in_group",
                    permanent=True,
                )
            elif sender not in group["participants"]:
                group["participants"][sender] = "member"
                change = "added"
            if change:
                self._save(groups)
            return jid, group["name"], change

    # --- internals ------------------------------------------------------------------------

    def _change(self, members: dict, jid: str, action: str, me: str) -> dict:
        role = members.get(jid)
        if action == "add":
            if role is not None:
                return {"ok": False, "error": "already_participant"}
            if split_jid(jid)[0] in self.unregistered:
                return {"ok": False, "error": "not_on_whatsapp"}
            members[jid] = "member"
        elif role is None:
            return {"ok": False, "error": "not_participant"}
        elif jid == me:
            return {"ok": False, "error": "use_leave" if action == "remove" else "not_allowed"}
        elif role == "superadmin" and action in ("remove", "demote"):
            return {"ok": False, "error": "not_allowed"}  # nobody removes the creator
        elif action == "remove":
            del members[jid]
        elif action == "promote":
            members[jid] = "superadmin" if role == "superadmin" else "admin"
        else:
            members[jid] = "member"
        return {"ok": True, "error": None}

    def _load(self) -> dict:
        try:
            groups = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise TransportError(
                f"The sandbox group store is unreadable: {exc}", code="sandbox_store_error"
            ) from None
        return groups if isinstance(groups, dict) else {}

    def _save(self, groups: dict) -> None:
        """Atomically: a crash mid-write leaves the old file, never half of a new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        try:
            temporary.write_text(json.dumps(groups, indent=1, sort_keys=True))
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)


def _new_jid(taken: dict) -> str:
    """1203630 and eleven digits, as WhatsApp's newer group JIDs look."""
    while True:
        jid = f"1203630{secrets.randbelow(10**11):011d}@{GROUP_SERVER}"
        if jid not in taken:
            return jid


def _new_group(name: str, *, owner: str, members: dict) -> dict:
    return {
        "name": name,
        "topic": "",
        "owner": owner,
        "announce": False,
        "locked": False,
        "invite": None,
        "participants": members,
        "created_at": datetime.now(UTC).isoformat(),
    }


def _check_subject(name: str) -> None:
    if not name.strip() or len(name) > SUBJECT_MAX:
        raise TransportError(
            f"A group name has 1 to {SUBJECT_MAX} characters.", code="invalid_input", permanent=True
        )


def _member_of(groups: dict, jid: str, me: str, *, contact: bool = False) -> dict:
    group = groups.get(jid)
    if group is None:
        raise TransportError(f"There is no group {jid}.", code="group_not_found", permanent=True)
    if me not in group["participants"]:
        if contact:
            raise TransportError(
                f"{phone_of(me) or me} is not in group {jid}.", code="not_in_group", permanent=True
            )
        raise TransportError(
            f"This session is not in group {jid} (it left or was removed); "
            "join it again with an invite link.",
            code="not_in_group",
            permanent=True,
        )
    return group


def _require_admin(group: dict, me: str, doing: str, *, contact: bool = False) -> None:
    if group["participants"].get(me) not in ADMIN_ROLES:
        who = (phone_of(me) or me) if contact else "this session"
        raise TransportError(
            f"Only group admins may {doing}; {who} is not an admin of the group.",
            code="not_admin",
            permanent=True,
        )


def _value(jid: str, group: dict) -> GroupInfo:
    participants = tuple(
        {
            "jid": member,
            "phone": phone_of(member),
            "is_admin": role in ADMIN_ROLES,
            "is_super_admin": role == "superadmin",
        }
        for member, role in group["participants"].items()
    )
    return GroupInfo(
        jid=jid,
        name=group["name"],
        topic=group["topic"],
        owner=group["owner"],
        announce=group["announce"],
        locked=group["locked"],
        participants=participants,
    )
