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


def _synchronous(value: str) -> str:
    level = value.strip().upper()
    if level not in {"NORMAL", "FULL", "EXTRA"}:
        raise ValueError("use NORMAL, FULL or EXTRA")
    return level


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
    Setting(
        "INSTANCE_PATH",
        None,
        "Folder for the SQLite database, media, session stores and secrets. Default: "
        "./instance when the working directory holds one; else, in a source checkout, "
        "its instance folder; else /var/lib/kabar when it exists and is writable (a "
        "service); else $XDG_DATA_HOME/kabar (~/.local/share/kabar).",
    ),
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL. Default: SQLite file kabar.db in the instance folder. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/dbname.",
    ),
    Setting(
        "SECRET_KEY",
        None,
        "Signs JWTs and cookies. Default: a random key generated once and kept in "
        "the instance folder (secret_key, mode 0600).",
    ),
    Setting("ACCESS_TOKEN_MINUTES", 15, "Lifetime of a JWT access token, in minutes.", int),
    Setting("REFRESH_TOKEN_DAYS", 30, "Lifetime of a JWT refresh token, in days.", int),
    Setting(
        "LOGIN_RATE_LIMIT",
        "10 per minute",
        "How many login attempts one client address, and separately one username, may make.",
    ),
    Setting(
        "RATELIMIT_STORAGE_URL",
        "memory://",
        "Where rate-limit counters live. memory:// counts per process; use "
        "redis://host:6379 when you run several workers or hosts.",
    ),
    Setting("ARGON2_TIME_COST", 3, "Argon2id iterations for password hashes.", int),
    Setting("ARGON2_MEMORY_COST", 65536, "Argon2id memory for password hashes, in KiB.", int),
    Setting("LOG_LEVEL", "INFO", "Log level: DEBUG, INFO, WARNING, ERROR."),
    Setting("LOG_JSON", False, "Write logs as one JSON object a line.", _bool),
    Setting(
        "PHONE_REGION",
        "ID",
        "Region assumed for phone numbers typed without a country code (ISO 3166 code).",
    ),
    Setting("ADMIN_USERNAME", "admin", "Username of the first admin that `kabar init` creates."),
    Setting(
        "ADMIN_PASSWORD",
        None,
        "Password of the first admin. Default: generated and printed once by `kabar init`.",
    ),
    Setting("HOST", "127.0.0.1", "Address `kabar run` listens on."),
    Setting("PORT", 7308, "Port `kabar run` listens on.", int),
    Setting("WEB_WORKERS", 2, "gunicorn worker processes for `kabar run`.", int),
    Setting("WEB_THREADS", 8, "Threads per gunicorn worker.", int),
    Setting(
        "PUBLIC_URL",
        None,
        "The address people and receivers reach Kabar at (https://wa.example.com); "
        "links Kabar sends out, such as the media url of a fonnte-format webhook, "
        "start with it. Unset: such links are paths only.",
    ),
    Setting(
        "TRUSTED_PROXIES",
        0,
        "How many reverse proxies sit in front of Kabar; their X-Forwarded-* headers "
        "are trusted for the client address (0: none).",
        int,
    ),
    Setting(
        "WATCHDOG_SECONDS",
        300,
        "A connected session silent for this long is probed and reconnected if dead.",
        int,
    ),
    Setting(
        "SESSION_PROCESSES",
        ["neonize"],
        "Transports whose sessions each run in a process of their own, started, watched "
        "and restarted by the runtime (a crash or a Go abort then ends only that "
        "session's process). neonize always should; add sandbox to run simulated "
        "sessions the same way.",
        _list,
    ),
    Setting(
        "SESSION_STOP_SECONDS",
        10,
        "How long a session's process may take to stop before it is killed.",
        int,
    ),
    Setting(
        "SEND_WORKERS",
        4,
        "Threads of the runtime that send outbox messages, shared by all sessions (one "
        "session sends one message at a time; pacing spaces them).",
        int,
    ),
    Setting(
        "RUNTIME_CAPACITY",
        1000,
        "Most sessions one runtime host holds. Several hosts against one PostgreSQL "
        "share the sessions evenly, up to each one's capacity (docs/scale-out.md).",
        int,
    ),
    Setting(
        "SQLITE_SYNCHRONOUS",
        "NORMAL",
        "SQLite only: when a commit waits for the disk. NORMAL (WAL): a commit survives "
        "any crash of Kabar (kill -9 included) at once, and reaches the disk at the "
        "next checkpoint, so a power cut or an OS crash may undo the last moments of "
        "commits (never corrupts the database). FULL: every commit waits for fsync "
        "and survives a power cut too, at one fsync a commit (often 150-1000 a second "
        "for the whole server; docs/benchmarks.md). PostgreSQL keeps its own setting "
        "(synchronous_commit).",
        _synchronous,
    ),
    Setting(
        "DATABASE_POOL_SIZE",
        20,
        "Database connections each Kabar process may hold (the runtime uses about "
        "WORKFLOW_WORKERS + SEND_WORKERS + 8, whatever the number of sessions).",
        int,
    ),
    Setting(
        "RUNTIME",
        True,
        "Whether `kabar run` also starts and supervises the runtime process that owns "
        "the WhatsApp sessions (turn off when you run `kabar runtime` elsewhere).",
        _bool,
    ),
    Setting(
        "RUNTIME_WAIT",
        5.0,
        "Seconds a web request waits for the runtime to answer a live look-up (is a "
        "number on WhatsApp, groups, profile pictures, sandbox messages) before it "
        "answers 503 runtime_timeout with Retry-After, freeing the web thread. Pairing "
        "and logging out wait at least 15 s (WhatsApp itself is slow to answer them).",
        float,
    ),
    Setting(
        "REGISTERED_CACHE_SECONDS",
        600,
        'How long an answer to "is this number on WhatsApp" is reused for the same '
        "session before WhatsApp is asked again (0: always ask).",
        int,
    ),
    Setting(
        "FETCH_ALLOW",
        [],
        "Hosts or networks (CIDR) the server may fetch from although they are private, "
        "e.g. 10.0.0.0/8,files.internal",
        _list,
    ),
    Setting(
        "WEBHOOK_ALLOW",
        [],
        "Hosts or networks (CIDR) that webhooks and reply-watch callbacks may be POSTed "
        "to although they are private or loopback, e.g. 127.0.0.1 for an n8n on this "
        "machine; it adds to KABAR_FETCH_ALLOW for webhooks only (media URLs still may "
        "not reach them).",
        _list,
    ),
    Setting(
        "FETCH_MAX_BYTES",
        67108864,
        "Largest body, in bytes, Kabar fetches from a URL or accepts as media (64 MiB).",
        int,
    ),
    Setting(
        "FETCH_TIMEOUT",
        30,
        "Seconds a fetch of a URL given by a user (media, webhooks) may take in all, "
        "redirects included. Media URLs are fetched by the runtime, never inside an API "
        "request: the message waits as `fetching` meanwhile.",
        int,
    ),
    Setting(
        "CONVERT_TIMEOUT",
        60,
        "Seconds ffmpeg may take to make a voice note (Ogg Opus) of the audio given; "
        "past it the message is refused (422) or, for a media URL, fails.",
        int,
    ),
    Setting(
        "MEDIA_FETCHERS",
        4,
        "Media URLs of outgoing messages the runtime fetches at once (a slow server "
        "holds one of them, never the API).",
        int,
    ),
    Setting(
        "MAX_BODY_BYTES",
        2097152,
        "Largest request body, in bytes, Kabar reads (2 MiB); larger ones are refused "
        "with 413 payload_too_large before they are read. Requests that carry media "
        "(sending a message, sandbox messages, ticket photos, imports) may be as large "
        "as KABAR_FETCH_MAX_BYTES allows, base64 included.",
        int,
    ),
    Setting(
        "TEMPLATE_TIMEOUT",
        2.0,
        "Seconds one workflow template (a parameter or a condition) may take to render; "
        "past it the node fails.",
        float,
    ),
    Setting(
        "TEMPLATE_MAX_OUTPUT",
        100000,
        "Characters a workflow template may output, and items or characters of any "
        "value it makes (\"'x' * 10**8\" is refused before it is built).",
        int,
    ),
    Setting(
        "TEMPLATE_MAX_LOOP",
        10000,
        "Loop iterations one workflow template may run in all (nested loops multiply; "
        "range() counts too).",
        int,
    ),
    Setting(
        "WORKFLOW_MAX_NODES",
        1000,
        "Nodes a workflow may have; a larger one is refused with 413 workflow_too_large.",
        int,
    ),
    Setting(
        "WORKFLOW_MAX_BYTES",
        1048576,
        "Size of a workflow document, in bytes of JSON (1 MiB); a larger one is refused "
        "with 413 workflow_too_large.",
        int,
    ),
    Setting(
        "WEBHOOK_TIMEOUT",
        10,
        "Seconds a webhook receiver has to answer one delivery before it counts as failed.",
        int,
    ),
    Setting(
        "WEBHOOK_MAX_AGE_HOURS",
        24,
        "A webhook delivery still failing this many hours after its event is given up "
        "(status dead; replay it by hand).",
        int,
    ),
    Setting(
        "WEBHOOK_PAUSE_AFTER",
        20,
        "Consecutive failed deliveries after which a webhook endpoint is paused: its "
        "events are still queued, but held back until a probe delivery succeeds.",
        int,
    ),
    Setting(
        "WEBHOOK_PROBE_SECONDS",
        30,
        "How long a paused webhook endpoint waits before one delivery is sent as a "
        "probe (and again after each failed probe); a probe that succeeds resumes the "
        "endpoint and sends what waited at once.",
        int,
    ),
    Setting(
        "EVENTS_STREAM_SECONDS",
        300,
        "How long one live event stream (GET /api/v1/events) stays open; clients "
        "reconnect with Last-Event-ID.",
        int,
    ),
    Setting(
        "TIMEZONE",
        "Asia/Jakarta",
        "The gateway's time zone: schedule triggers without a timezone of their own fire by it.",
    ),
    Setting(
        "WORKFLOWS_DIR",
        "",
        "Folder of workflow JSON files (subfolders too), loaded when the runtime starts "
        "and by `kabar workflow reload`. Empty: the workflows shipped with Kabar "
        "(workflows/ in a checkout; inside the installed package otherwise).",
    ),
    Setting(
        "WORKFLOW_WORKERS",
        4,
        "Threads of the runtime that start and resume workflow runs (one chat's "
        "messages are always handled in order by one of them).",
        int,
    ),
    Setting(
        "WORKFLOW_CHAIN_LIMIT",
        8,
        "How many workflow runs in a row may each be started by the end of the one "
        "before (workflow.completed/workflow.failed triggers); the run past it is not "
        "started but stored as failed, with a workflow.failed event that starts nothing. "
        "Stops workflows that start each other in a loop. 0: no limit.",
        int,
    ),
    Setting(
        "WORKFLOW_EVENT_STARTS_PER_MINUTE",
        120,
        "How many runs one workflow's event triggers may start in any minute; events "
        "past it start none (the first refused is stored as a failed run saying so). "
        "0: no limit.",
        int,
    ),
    Setting(
        "HELPDESK_PREFIX",
        "BRT",
        "Letters that begin every helpdesk tracking number (BRT2409001: prefix, YYMM, sequence).",
        _ticket_prefix,
    ),
    Setting(
        "HELPDESK_GUESTS",
        True,
        "Whether WhatsApp senders who are not in the helpdesk's people directory may "
        "report; false: only active people in it (and staff).",
        _bool,
    ),
    Setting(
        "HELPDESK_TIMEZONE",
        "Asia/Jakarta",
        "Time zone of the helpdesk: the month in tracking numbers, days in statistics "
        "and times in exports.",
        _timezone,
    ),
    Setting(
        "COOKIE_SECURE",
        False,
        "Send the dashboard's login cookie over HTTPS only. Turn it on when Kabar is "
        "served over HTTPS (behind a proxy too); leave it off for plain http://.",
        _bool,
    ),
    Setting(
        "DASHBOARD_SESSION_HOURS",
        12,
        "How long a dashboard login lasts; then the browser logs in again. Logging out, "
        "a block or a password change ends it at once.",
        int,
    ),
    Setting(
        "DASHBOARD_TIMEZONE",
        "Asia/Jakarta",
        'Time zone the dashboard shows times in and counts "today" by.',
        _timezone,
    ),
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
            raise ConfigError(f"{setting.env}={raw!r} is not valid: {exc}. {setting.help}") from exc
    values.update(overrides or {})
    return values


def instance_path(values: dict[str, Any]) -> Path:
    """Where the instance is: the setting, else the first of ``instance_candidates``."""
    if values["INSTANCE_PATH"]:
        return Path(values["INSTANCE_PATH"]).expanduser().resolve()
    return default_instance_path()


INSTANCE_MARKERS = ("secret_key", "kabar.db")
SYSTEM_INSTANCE = Path("/var/lib/kabar")


def is_instance(folder: Path) -> bool:
    """Whether ``folder`` holds a Kabar instance (made by `kabar init` or `kabar run`)."""
    return any((folder / marker).exists() for marker in INSTANCE_MARKERS)


def source_checkout() -> Path | None:
    """The checkout the server package runs from (an editable install), if it does."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "setup.cfg").is_file() and (root / "server").is_dir() else None


def default_instance_path() -> Path:
    """Found the way services are: ./instance only when it holds an instance; a source
    checkout keeps its instance beside the code; an installed package uses /var/lib/kabar
    when that exists and is writable (made for the service), else the XDG data folder."""
    here = Path.cwd() / "instance"
    if is_instance(here):
        return here.resolve()
    checkout = source_checkout()
    if checkout is not None:
        return checkout / "instance"
    if SYSTEM_INSTANCE.is_dir() and os.access(SYSTEM_INSTANCE, os.W_OK):
        return SYSTEM_INSTANCE
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return (Path(data_home) / "kabar").resolve()


def flask_config(values: dict[str, Any], instance: Path) -> dict[str, Any]:
    """Translate Kabar settings into the keys Flask and its extensions read."""
    database_url = values["DATABASE_URL"] or f"sqlite:///{instance / 'kabar.db'}"
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    engine_options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": values["DATABASE_POOL_SIZE"],
        "max_overflow": 5,
        "pool_timeout": 60,
    }
    if database_url.startswith("sqlite"):
        from server import sqlite_writer

        # Writers queue (sqlite_writer.py); a file needs no ping before each checkout.
        engine_options["connect_args"] = {
            "timeout": 30,
            "factory": sqlite_writer.factory(values["SQLITE_SYNCHRONOUS"]),
        }
        engine_options["pool_pre_ping"] = False
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
        "MAX_CONTENT_LENGTH": values["MAX_BODY_BYTES"],  # views that take media: inputs.py
        "MAX_FORM_MEMORY_SIZE": values["MAX_BODY_BYTES"],
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
