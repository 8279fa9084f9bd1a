"""SQLAlchemy models, one module per domain. Import them from here."""

from server.models.base import OwnedMixin, TimestampMixin, UTCDateTime, db, utcnow
from server.models.users import ApiKey, Group, LoginSession, User

__all__ = [
    "db", "utcnow", "UTCDateTime", "TimestampMixin", "OwnedMixin",
    "ApiKey", "Group", "LoginSession", "User",
]
