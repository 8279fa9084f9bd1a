"""``next_slot``: when a session may send its next message, case by case.

Each rule of anti-ban pacing has rows here that fail if the rule is dropped: quiet hours,
the daily cap, its warm-up, the recipient cooldown, the minimum interval, and the
high-priority exemption. Times are fixed; nothing depends on the clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.outbox.pacing import History, Pacing, next_slot

JKT = ZoneInfo("Asia/Jakarta")
NOW = datetime(2024, 9, 2, 17, 0, tzinfo=JKT).astimezone(UTC)  # 17:00 in Jakarta
NORMAL, HIGH = 5, 0

# No jitter, so every expected time is exact (jitter has its own test below).
BASE = Pacing(min_interval=2.0, jitter=0.0)
FRESH = History(last_sent_at=None, last_to_recipient_at=None, sent_today=0, connected_days=365)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 9, day, hour, minute, tzinfo=JKT)


CASES = [
    # id, pacing, history, priority, expected (None: now; else (when, words of the why))
    ("nothing sent yet", BASE, FRESH, NORMAL, None),
    (
        "pacing off",
        replace(BASE, enabled=False, daily_cap=1, quiet_start="16:00", quiet_end="18:00"),
        replace(FRESH, last_sent_at=ago(0), sent_today=5),
        NORMAL,
        None,
    ),
    # the minimum interval between two sends of the session, for every priority
    (
        "interval not over",
        BASE,
        replace(FRESH, last_sent_at=ago(0.5)),
        NORMAL,
        (NOW + timedelta(seconds=1.5), "minimum interval"),
    ),
    ("interval over", BASE, replace(FRESH, last_sent_at=ago(2)), NORMAL, None),
    (
        "interval holds high priority too",
        BASE,
        replace(FRESH, last_sent_at=ago(0.5)),
        HIGH,
        (NOW + timedelta(seconds=1.5), "minimum interval"),
    ),
    # quiet hours, in the pacing's time zone, also across midnight
    (
        "inside quiet hours",
        replace(BASE, quiet_start="16:00", quiet_end="18:00"),
        FRESH,
        NORMAL,
        (local(2, 18), "quiet hours"),
    ),
    (
        "before quiet hours",
        replace(BASE, quiet_start="17:30", quiet_end="18:00"),
        FRESH,
        NORMAL,
        None,
    ),
    (
        "after quiet hours",
        replace(BASE, quiet_start="08:00", quiet_end="17:00"),
        FRESH,
        NORMAL,
        None,
    ),
    (
        "quiet across midnight",
        replace(BASE, quiet_start="16:00", quiet_end="06:00"),
        FRESH,
        NORMAL,
        (local(3, 6), "quiet hours"),
    ),
    (
        "quiet hours in another zone",
        replace(BASE, quiet_start="11:00", quiet_end="12:00", timezone="Europe/London"),
        FRESH,
        NORMAL,
        (datetime(2024, 9, 2, 12, 0, tzinfo=ZoneInfo("Europe/London")), "quiet hours"),
    ),
    (
        "high priority sends in quiet hours",
        replace(BASE, quiet_start="16:00", quiet_end="18:00"),
        FRESH,
        HIGH,
        None,
    ),
    # the daily cap, counted in the pacing's day; it holds high priority too
    ("under the cap", replace(BASE, daily_cap=100), replace(FRESH, sent_today=99), NORMAL, None),
    (
        "cap reached",
        replace(BASE, daily_cap=100),
        replace(FRESH, sent_today=100),
        NORMAL,
        (local(3, 0), "daily cap of 100"),
    ),
    (
        "cap holds high priority",
        replace(BASE, daily_cap=100),
        replace(FRESH, sent_today=100),
        HIGH,
        (local(3, 0), "daily cap of 100"),
    ),
    ("no cap", BASE, replace(FRESH, sent_today=10_000), NORMAL, None),
    # warm-up: a new number's cap grows from warmup_start to daily_cap
    (
        "warm-up day 0 caps at the start",
        replace(BASE, daily_cap=100, warmup_days=10, warmup_start=20),
        replace(FRESH, sent_today=20, connected_days=0),
        NORMAL,
        (local(3, 0), "daily cap of 20"),
    ),
    (
        "warm-up day 0 under its cap",
        replace(BASE, daily_cap=100, warmup_days=10, warmup_start=20),
        replace(FRESH, sent_today=19, connected_days=0),
        NORMAL,
        None,
    ),
    (
        "warm-up halfway",
        replace(BASE, daily_cap=100, warmup_days=10, warmup_start=20),
        replace(FRESH, sent_today=60, connected_days=5),
        NORMAL,
        (local(3, 0), "daily cap of 60"),
    ),
    (
        "warm-up over",
        replace(BASE, daily_cap=100, warmup_days=10, warmup_start=20),
        replace(FRESH, sent_today=60, connected_days=10),
        NORMAL,
        None,
    ),
    # the cooldown between two sends to the same chat; high priority is exempt
    (
        "recipient cooling down",
        replace(BASE, recipient_cooldown=60),
        replace(FRESH, last_sent_at=ago(30), last_to_recipient_at=ago(30)),
        NORMAL,
        (NOW + timedelta(seconds=30), "cooldown"),
    ),
    (
        "recipient cooled down",
        replace(BASE, recipient_cooldown=60),
        replace(FRESH, last_sent_at=ago(61), last_to_recipient_at=ago(61)),
        NORMAL,
        None,
    ),
    (
        "high priority skips the cooldown",
        replace(BASE, recipient_cooldown=60),
        replace(FRESH, last_sent_at=ago(30), last_to_recipient_at=ago(30)),
        HIGH,
        None,
    ),
    # the first rule that holds a message says why
    (
        "quiet hours before the cap",
        replace(BASE, daily_cap=1, quiet_start="16:00", quiet_end="18:00"),
        replace(FRESH, sent_today=1),
        NORMAL,
        (local(2, 18), "quiet hours"),
    ),
]


@pytest.mark.parametrize(
    ("pacing", "history", "priority", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_next_slot(pacing, history, priority, expected):
    slot = next_slot(pacing, history, now=NOW, priority=priority, jitter_key=7)
    if expected is None:
        assert slot is None
    else:
        assert slot is not None, "the message would go now"
        when, why = slot
        assert when == expected[0]
        assert expected[1] in why


def test_jitter_is_within_its_bound_and_the_same_for_the_same_message():
    pacing = Pacing(min_interval=2.0, jitter=3.0)
    history = replace(FRESH, last_sent_at=NOW)
    slots = {
        key: next_slot(pacing, history, now=NOW, priority=NORMAL, jitter_key=key)[0]
        for key in range(50)
    }
    assert all(
        NOW + timedelta(seconds=2) <= s <= NOW + timedelta(seconds=5) for s in slots.values()
    )
    assert len(set(slots.values())) > 1  # it varies from message to message…
    assert next_slot(pacing, history, now=NOW, priority=NORMAL, jitter_key=3)[0] == slots[3]
