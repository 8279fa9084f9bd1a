"""Pacing against bans: when may a session send its next message?

Pacing delays, it never drops: a message that may not go yet gets a sentence in
``waiting`` saying why and until when, and the dispatcher holds its session until then
(pacing decides when a session sends next, not which message). Everything it needs is
read from the outbox rows themselves (last send, last send to this recipient, sends
today), so a restart forgets nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.errors import ValidationFailed


@dataclass(frozen=True)
class Pacing:
    enabled: bool = True
    min_interval: float = 2.0  # seconds between two sends of a session
    jitter: float = 2.0  # plus up to this many random seconds
    recipient_cooldown: float = 0.0  # seconds between two sends to the same chat
    daily_cap: int = 0  # sends a day; 0 means no cap
    warmup_days: int = 0  # a new number's cap grows from warmup_start to daily_cap
    warmup_start: int = 20
    typing: bool = False  # show "typing…" before each text
    quiet_start: str | None = None  # "22:00": no bulk or normal sends from here…
    quiet_end: str | None = None  # …to here ("06:00"), in ``timezone``
    timezone: str = "Asia/Jakarta"

    @classmethod
    def from_settings(cls, settings: dict | None) -> Pacing:
        """The session's ``settings["pacing"]`` over the defaults; bad values are 422."""
        raw = dict((settings or {}).get("pacing") or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValidationFailed(
                errors={
                    "settings": {"pacing": [f"Unknown pacing option(s): {', '.join(unknown)}."]}
                }
            )
        pacing = cls(**raw)
        pacing.check()
        return pacing

    def check(self) -> None:
        errors = []
        if self.min_interval < 0 or self.jitter < 0 or self.recipient_cooldown < 0:
            errors.append("Intervals cannot be negative.")
        if (self.quiet_start is None) != (self.quiet_end is None):
            errors.append("Give both quiet_start and quiet_end, or neither.")
        for value in (self.quiet_start, self.quiet_end):
            if value is not None:
                try:
                    time.fromisoformat(value)
                except ValueError:
                    errors.append(f"{value!r} is not a time like 22:00.")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"{self.timezone!r} is not a time zone like Asia/Jakarta.")
        if errors:
            raise ValidationFailed(errors={"settings": {"pacing": errors}})

    def cap_today(self, connected_days: float) -> int:
        if not self.daily_cap:
            return 0
        if self.warmup_days and connected_days < self.warmup_days:
            grown = self.warmup_start + (self.daily_cap - self.warmup_start) * (
                connected_days / self.warmup_days
            )
            return max(1, int(min(self.daily_cap, grown)))
        return self.daily_cap

    def quiet_until(self, now: datetime) -> datetime | None:
        """If ``now`` is in quiet hours, when they end; else None."""
        if self.quiet_start is None or self.quiet_end is None:
            return None
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        start, end = time.fromisoformat(self.quiet_start), time.fromisoformat(self.quiet_end)
        t = local.timetz().replace(tzinfo=None)
        inside = (start <= t < end) if start < end else (t >= start or t < end)
        if not inside:
            return None
        end_today = datetime.combine(local.date(), end, zone)
        return end_today if end_today > local else end_today + timedelta(days=1)

    def start_of_day(self, now: datetime) -> datetime:
        local = now.astimezone(ZoneInfo(self.timezone))
        return datetime.combine(local.date(), time(0), local.tzinfo)


@dataclass(frozen=True)
class History:
    """What the outbox says about past sends, for one decision."""

    last_sent_at: datetime | None
    last_to_recipient_at: datetime | None
    sent_today: int
    connected_days: float


def next_slot(
    pacing: Pacing, history: History, *, now: datetime, priority: int, jitter_key: int
) -> tuple[datetime, str] | None:
    """None if the message may go now; else (not before when, why it waits).

    The jitter is drawn from ``jitter_key`` (the message's sequence number), so asking
    again for the same message gives the same answer instead of a new random delay.
    """
    if not pacing.enabled:
        return None
    high = priority <= 0  # transactional (an OTP): past quiet hours and cooldown
    if not high:
        quiet = pacing.quiet_until(now)
        if quiet is not None:
            return quiet, f"quiet hours until {pacing.quiet_end} ({pacing.timezone})"
    cap = pacing.cap_today(history.connected_days)
    if cap and history.sent_today >= cap:
        tomorrow = pacing.start_of_day(now) + timedelta(days=1)
        return tomorrow, f"daily cap of {cap} messages reached; continues tomorrow"
    if history.last_sent_at is not None:
        gap = pacing.min_interval + random.Random(jitter_key).uniform(0, pacing.jitter)
        ready = history.last_sent_at + timedelta(seconds=gap)
        if ready > now:
            return ready, "pacing: minimum interval between messages"
    if not high and pacing.recipient_cooldown and history.last_to_recipient_at is not None:
        ready = history.last_to_recipient_at + timedelta(seconds=pacing.recipient_cooldown)
        if ready > now:
            return ready, "pacing: cooldown for this recipient"
    return None
