"""The helpdesk's refusals. Their codes are stable: the API returns them, and the ticket
nodes turn them into outputs (``missing``, ``forbidden``, ``invalid``, ``refused``)."""

from __future__ import annotations

from server.errors import Conflict, Forbidden, NotFound


class TicketNotFound(NotFound):
    code = "ticket_not_found"
    message = "No ticket with this number."


class NotAllowed(Forbidden):
    code = "ticket_not_allowed"
    message = "You may not do this to this ticket."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    message = "The ticket's status does not allow this."


class ReporterNotRegistered(Forbidden):
    code = "reporter_not_registered"
    message = (
        "Only people in the directory may report (KABAR_HELPDESK_GUESTS is off); "
        "add this number to the people directory."
    )


class PersonNotFound(NotFound):
    code = "person_not_found"
    message = "No person with this id."


class StaffNotFound(NotFound):
    code = "staff_not_found"
    message = "No staff member with this user id or phone."
