"""SQLAlchemy models, one module per domain. Import them from here."""

from server.models.base import (
    OwnedMixin,
    TimestampMixin,
    UTCDateTime,
    db,
    memo,
    memoised,
    unit_of_work,
    utcnow,
)
from server.models.chats import ChatState
from server.models.contacts import Contact
from server.models.media import Media, MediaDownload
from server.models.messages import Message, StoredEvent
from server.models.outbox import (
    FINAL_STATUSES,
    OUTBOX_STATUSES,
    PRIORITIES,
    WAITING_STATUSES,
    Broadcast,
    OutboxMessage,
    SandboxDelivery,
)
from server.models.sessions import (
    RuntimeCommand,
    RuntimeHeartbeat,
    RuntimeHost,
    SessionStatusChange,
    WaSession,
    new_session_id,
)
from server.models.tickets import (
    ASSIGNMENT_STATUSES,
    EVENT_KINDS,
    OPEN_STATUSES,
    PERSON_STATUSES,
    STAFF_LEVELS,
    STAFF_STATUSES,
    TICKET_STATUSES,
    Assignment,
    Person,
    StaffProfile,
    Ticket,
    TicketCounter,
    TicketEvent,
)
from server.models.users import ApiKey, Group, LoginSession, User
from server.models.webhooks import (
    DELIVERY_STATUSES,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from server.models.workflows import (
    OPEN_RUN_STATUSES,
    RUN_STATUSES,
    Workflow,
    WorkflowInbox,
    WorkflowRun,
    WorkflowVersion,
)

__all__ = [
    "db", "memo", "memoised", "unit_of_work", "utcnow", "UTCDateTime", "TimestampMixin",
    "OwnedMixin",
    "ApiKey", "Group", "LoginSession", "User",
    "Media", "MediaDownload",
    "Message", "StoredEvent",
    "ChatState", "Contact",
    "FINAL_STATUSES", "OUTBOX_STATUSES", "PRIORITIES", "WAITING_STATUSES", "Broadcast",
    "OutboxMessage",
    "SandboxDelivery",
    "RuntimeCommand", "RuntimeHeartbeat", "RuntimeHost", "SessionStatusChange", "WaSession",
    "new_session_id",
    "DELIVERY_STATUSES", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint",
    "OPEN_RUN_STATUSES", "RUN_STATUSES", "Workflow", "WorkflowInbox", "WorkflowRun",
    "WorkflowVersion",
    "ASSIGNMENT_STATUSES", "EVENT_KINDS", "OPEN_STATUSES", "PERSON_STATUSES", "STAFF_LEVELS",
    "STAFF_STATUSES", "TICKET_STATUSES", "Assignment", "Person", "StaffProfile", "Ticket",
    "TicketCounter", "TicketEvent",
]
