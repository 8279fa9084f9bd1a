"""Settings: documented defaults, then ``KABAR_*`` environment variables, then overrides.

Every setting is declared once in ``SETTINGS`` with its type, default and a sentence
of documentation; ``docs/configuration.md`` and ``kabar config`` are printed from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str  # the Flask config key; the environment variable is KABAR_<name>
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return f"KABAR_{self.name}"


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {value!r}")


def _timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected a time zone such as Asia/Jakarta") from None
    return value.strip()


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _ticket_prefix(value: str) -> str:
    prefix = value.strip().upper()
    if not (1 <= len(prefix) <= 12 and prefix.isascii() and prefix.isalpha()):
        raise ValueError("use 1-12 letters, such as BRT")
    return prefix


def _timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a time zone name such as Asia/Jakarta") from None
    return value.strip()


SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_PATH", None,
            "Folder for the SQLite database, media, session stores and secrets. "
            "Default: ./instance in the working directory."),
    Setting("DATABASE_URL", None,
            "SQLAlchemy URL. Default: SQLite file kabar.db in the instance folder. "
            "PostgreSQL: postgresql+psycopg://user@host:5432/dbname."),
    Setting("SECRET_KEY", None,
            "Signs JWTs and cookies. Default: a random key generated once and kept in "
            "the instance folder (secret_key, mode 0600)."),
    Setting("ACCESS_TOKEN_MINUTES", 15, "Lifetime of a JWT access token, in minutes.", int),
    Setting("REFRESH_TOKEN_DAYS", 30, "Lifetime of a JWT refresh token, in days.", int),
    Setting("LOGIN_RATE_LIMIT", "10 per minute",
            "How many login attempts one client address, and separately one username, may make."),
    Setting("RATELIMIT_STORAGE_URL", "memory://",
            "Where rate-limit counters live. memory:// counts per process; use "
            "redis://host:6379 when you run several workers or hosts."),
    Setting("ARGON2_TIME_COST", 3, "Argon2id iterations for password hashes.", int),
    Setting("ARGON2_MEMORY_COST", 65536, "Argon2id memory for password hashes, in KiB.", int),
    Setting("LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    Setting("LOG_JSON", False, "Write logs as one JSON object a line.", _bool),
    Setting("PHONE_REGION", "ID",
            "Region assumed for phone numbers typed without a country code (ISO 3166 code)."),
    Setting("ADMIN_USERNAME", "admin", "Username of the first admin that `kabar init` creates."),
    Setting("ADMIN_PASSWORD", None,
            "Password of the first admin. Default: generated and printed once by `kabar init`."),
    Setting("HOST", "127.0.0.1", "Address `kabar run` listens on."),
    Setting("PORT", 7308, "Port `kabar run` listens on.", int),
    Setting("WEB_WORKERS", 2, "gunicorn worker processes for `kabar run`.", int),
    Setting("WEB_THREADS", 8, "Threads per gunicorn worker.", int),
    Setting("TRUSTED_PROXIES", 0,
            "How many reverse proxies sit in front of Kabar; their X-Forwarded-* headers "
            "are trusted for the client address (0: none).", int),
    Setting("WATCHDOG_SECONDS", 300,
            "A connected session silent for this long is probed and reconnected if dead.", int),
    Setting("SESSION_PROCESSES", ["neonize"],
            "Transports whose sessions each run in a process of their own, started, watched "
            "and restarted by the runtime (a crash or a Go abort then ends only that "
            "session's process). neonize always should; add sandbox to run simulated "
            "sessions the same way.", _list),
    Setting("SESSION_STOP_SECONDS", 10,
            "How long a session's process may take to stop before it is killed.", int),
    Setting("SEND_WORKERS", 4,
            "Threads of the runtime that send outbox messages, shared by all sessions (one "
            "session sends one message at a time; pacing spaces them).", int),
    Setting("DATABASE_POOL_SIZE", 20,
            "Database connections each Kabar process may hold (the runtime uses about "
            "WORKFLOW_WORKERS + SEND_WORKERS + 8, whatever the number of sessions).", int),
    Setting("RUNTIME", True,
            "Whether `kabar run` also starts and supervises the runtime process that owns "
            "the WhatsApp sessions (turn off when you run `kabar runtime` elsewhere).", _bool),
    Setting("FETCH_ALLOW", [],
            "Hosts or networks (CIDR) the server may fetch from although they are private, "
            "e.g. 10.0.0.0/8,files.internal", _list),
    Setting("WEBHOOK_ALLOW", [],
            "Hosts or networks (CIDR) that webhooks and reply-watch callbacks may be POSTed "
            "to although they are private or loopback, e.g. 127.0.0.1 for an n8n on this "
            "machine; it adds to KABAR_FETCH_ALLOW for webhooks only (media URLs still may "
            "not reach them).", _list),
    Setting("FETCH_MAX_BYTES", 67108864,
            "Largest body, in bytes, Kabar fetches from a URL or accepts as media (64 MiB).",
            int),
    Setting("FETCH_TIMEOUT", 30,
            "Seconds a fetch of a URL given by a user (media, webhooks) may take in all, "
            "redirects included.", int),
    Setting("WEBHOOK_TIMEOUT", 10,
            "Seconds a webhook receiver has to answer one delivery before it counts as "
            "failed.", int),
    Setting("WEBHOOK_MAX_AGE_HOURS", 24,
            "A webhook delivery still failing this many hours after its event is given up "
            "(status dead; replay it by hand).", int),
    Setting("WEBHOOK_PAUSE_AFTER", 20,
            "Consecutive failed deliveries after which a webhook endpoint is paused.", int),
    Setting("EVENTS_STREAM_SECONDS", 300,
            "How long one live event stream (GET /api/v1/events) stays open; clients "
            "reconnect with Last-Event-ID.", int),
    Setting("TIMEZONE", "Asia/Jakarta",
            "The gateway's time zone: schedule triggers without a timezone of their own "
            "fire by it."),
    Setting("WORKFLOWS_DIR", "",
            "Folder of workflow JSON files (subfolders too), loaded when the runtime starts "
            "and by `kabar workflow reload`. Empty: the workflows/ folder shipped beside "
            "the server package, if there is one."),
    Setting("WORKFLOW_WORKERS", 4,
            "Threads of the runtime that start and resume workflow runs (one chat's "
            "messages are always handled in order by one of them).", int),
    Setting("HELPDESK_PREFIX", "BRT",
            "Letters that begin every helpdesk tracking number (BRT2409001: prefix, YYMM, "
            "sequence).", _ticket_prefix),
    Setting("HELPDESK_GUESTS", True,
            "Whether WhatsApp senders who are not in the helpdesk's people directory may "
            "report; false: only active people in it (and staff).", _bool),
    Setting("HELPDESK_TIMEZONE", "Asia/Jakarta",
            "Time zone of the helpdesk: the month in tracking numbers, days in statistics "
            "and times in exports.", _timezone),
    Setting("COOKIE_SECURE", False,
            "Send the dashboard's login cookie over HTTPS only. Turn it on when Kabar is "
            "served over HTTPS (behind a proxy too); leave it off for plain http://.", _bool),
    Setting("DASHBOARD_SESSION_HOURS", 12,
            "How long a dashboard login lasts; then the browser logs in again. Logging out, "
            "a block or a password change ends it at once.", int),
    Setting("DASHBOARD_TIMEZONE", "Asia/Jakarta",
            "Time zone the dashboard shows times in and counts \"today\" by.", _timezone),
)

BY_NAME = {setting.name: setting for setting in SETTINGS}


class ConfigError(ValueError):
    """A KABAR_* variable has a value that cannot be used."""


def load(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the settings: defaults, then the environment, then ``overrides``."""
    values = {setting.name: setting.default for setting in SETTINGS}
    for setting in SETTINGS:
        raw = os.environ.get(setting.env)
        if raw is None:
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(
                f"{setting.env}={raw!r} is not valid: {exc}. {setting.help}"
            ) from exc
    values.update(overrides or {})
    return values


def instance_path(values: dict[str, Any]) -> Path:
    return Path(values["INSTANCE_PATH"] or Path.cwd() / "instance").resolve()


def flask_config(values: dict[str, Any], instance: Path) -> dict[str, Any]:
    """Translate Kabar settings into the keys Flask and its extensions read."""
    database_url = values["DATABASE_URL"] or f"sqlite:///{instance / 'kabar.db'}"
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    engine_options: dict[str, Any] = {"pool_pre_ping": True,
                                      "pool_size": values["DATABASE_POOL_SIZE"],
                                      "max_overflow": 5, "pool_timeout": 60}
    if database_url.startswith("sqlite"):
        engine_options["connect_args"] = {"timeout": 30}
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "JWT_SECRET_KEY": values["SECRET_KEY"],
        "SECRET_KEY": values["SECRET_KEY"],
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=values["ACCESS_TOKEN_MINUTES"]),
        "JWT_REFRESH_TOKEN_EXPIRES": timedelta(days=values["REFRESH_TOKEN_DAYS"]),
        "JWT_TOKEN_LOCATION": ["headers"],
        "RATELIMIT_STORAGE_URI": values["RATELIMIT_STORAGE_URL"],
        "RATELIMIT_HEADERS_ENABLED": True,
        "API_TITLE": "Kabar",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": None,
        "JSON_SORT_KEYS": False,
        # The dashboard's cookie session (server/ui): the API never reads it.
        "SESSION_COOKIE_NAME": "kabar_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": values["COOKIE_SECURE"],
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=values["DASHBOARD_SESSION_HOURS"]),
        # CSRF is checked by the dashboard's blueprints only (Bearer-token APIs need none).
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the login cookie
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": values["DASHBOARD_TIMEZONE"],
    }


def render_markdown() -> str:
    """The settings table for docs/configuration.md."""
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        default = setting.default
        if isinstance(default, list):
            default = ",".join(default)
        shown = "(see meaning)" if default is None else f"`{default}`"
        lines.append(f"| `{setting.env}` | {shown} | {setting.help} |")
    return "\n".join(lines) + "\n"
