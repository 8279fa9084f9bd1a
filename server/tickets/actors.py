"""Who acts on a ticket, and what that lets them do.

- ``user``: someone in the dashboard or the API. Holding ``tickets:assign`` makes them a
  manager; otherwise (a field officer) they act on their own assignments.
- ``staff``: a staff member writing on WhatsApp, found by their phone. Administrator and
  Staf levels manage; TBO act on their own assignments. Inactive staff count as reporters.
- ``reporter``: anyone else on WhatsApp; they confirm or reopen their own tickets.
- ``system``: a workflow acting on its own (a schedule, a gateway event): it manages, as
  the workflow's author decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.principal import Principal
from server.events import TicketParty
from server.models import StaffProfile, User, db
from server.tickets import staff
from server.tickets.people import find_by_phone


@dataclass(frozen=True)
class Actor:
    kind: str
    name: str = ""
    phone: str | None = None
    jid: str | None = None
    user: User | None = None
    level: str | None = None
    manages: bool = False

    @classmethod
    def of_principal(cls, principal: Principal) -> Actor:
        user = principal.user
        profile = db.session.get(StaffProfile, user.id)
        return cls(
            "user",
            staff.display_name(user),
            phone=profile.phone if profile else None,
            user=user,
            level=profile.level if profile else None,
            manages=principal.can("tickets:assign"),
        )

    @classmethod
    def system(cls, name: str = "workflow") -> Actor:
        return cls("system", name, manages=True)

    @classmethod
    def of_phone(cls, phone: str | None, *, name: str = "", jid: str | None = None) -> Actor:
        """A WhatsApp sender: an active staff member, else a reporter."""
        profile = staff.find_by_phone(phone)
        if profile is not None and profile.status == "active":
            return cls(
                "staff",
                staff.display_name(profile.user),
                phone=phone,
                jid=jid,
                user=profile.user,
                level=profile.level,
                manages=profile.level in staff.MANAGING_LEVELS,
            )
        person = find_by_phone(phone)
        return cls("reporter", person.name if person else name, phone=phone, jid=jid)

    def party(self) -> TicketParty:
        person = find_by_phone(self.phone) if self.kind == "reporter" else None
        return TicketParty(
            kind=self.kind,
            name=self.name,
            phone=self.phone,
            jid=self.jid,
            user_id=self.user.id if self.user else None,
            person_id=person.id if person else None,
            level=self.level,
        )
