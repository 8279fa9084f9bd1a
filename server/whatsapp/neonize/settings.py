"""What a session's ``settings["neonize"]`` may change."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What a session's ``settings["neonize"]`` may change (all optional)."""

    store_url: str | None = None  # postgres://… ; default: a SQLite file per session
    backoff_initial: float = 1.0  # first retry of a failed connect, doubled each time…
    backoff_max: float = 60.0  # …up to this
    max_connect_attempts: int = 0  # give up ("failed") after this many; 0: never
    first_qr_seconds: float = 60.0  # how long WhatsApp shows the first QR code
    qr_seconds: float = 20.0  # and each later one
    qr_grace_seconds: float = 15.0  # no new code this long after the last expired: give up
    # pair_code(), logout() and stop() run on the runtime's control thread, which must beat
    # the runtime lease every 2 s and is reported down after 10 s: keep these well below.
    pair_code_wait: float = 6.0  # pair_code() waits this long for WhatsApp's first QR
    call_timeout: float = 6.0  # PairPhone / logout answer within this, or "timeout"
    stop_timeout: float = 5.0  # stop() returns after this, even if neonize does not
    check_recipients: bool = True  # ask WhatsApp whether a number exists before sending
    device_name: str = "Kabar"  # shown on the phone under Linked devices
    device_platform: str = "CHROME"  # DeviceProps platform (SAFARI shows as "Opera")
    # Each Go connect() keeps a store connection (2 fds on SQLite, a PostgreSQL backend)
    # until the process ends: after this many, ask for a fresh process.
    connects_per_process: int = 8
    presence_idle_seconds: float = 20.0  # "unavailable" this long after the last typing
    pair_code_seconds: float = 180.0  # how long a pairing code is shown as valid
    # History sync: messages up to this many days old that Kabar lacks are backfilled
    # (message.backfilled); 0 turns backfill off.
    backfill_days: float = 7.0
    route_go_stdout: bool = False  # Go's prints to the log: set in a session's own process

    @classmethod
    def from_options(cls, options: dict) -> Settings:
        """Settings from the session's options; a value of the wrong type is logged and
        ignored (the session still starts, with the default)."""
        values: dict[str, Any] = {}
        for name, spec in cls.__dataclass_fields__.items():
            value = options.get(name)
            if value is None:
                continue
            kind = type(spec.default) if spec.default is not None else str
            try:
                if kind is bool:
                    values[name] = (
                        value
                        if isinstance(value, bool)
                        else str(value).strip().lower() in ("1", "true", "yes", "on")
                    )
                else:
                    values[name] = kind(value)
            except (TypeError, ValueError):
                log.warning("ignoring neonize option %s=%r", name, value)
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        """1, 2, 4, … seconds (with the defaults), capped at ``backoff_max``."""
        return min(self.backoff_initial * 2 ** max(attempt - 1, 0), self.backoff_max)
