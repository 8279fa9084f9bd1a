"""Authentication (JWT logins, API keys), permissions and tenancy."""

from server.auth.guard import public, require
from server.auth.principal import Principal, current_principal
from server.auth.tenancy import get_owned, scoped

__all__ = ["Principal", "current_principal", "get_owned", "public", "require", "scoped"]
