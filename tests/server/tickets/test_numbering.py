"""Tracking numbers: prefix + YYMM (helpdesk time) + sequence, unique under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from server.models import Ticket, TicketCounter, db
from server.tickets import lifecycle, numbering
from server.tickets.actors import Actor


def _report(text: str = "lampu mati") -> str:
    return lifecycle.create(text, Actor.system(), reporter_phone="6281234567890").number


@pytest.fixture
def clock(monkeypatch):
    """Set the service's clock: clock(datetime(...))."""

    def set_to(moment: datetime) -> None:
        monkeypatch.setattr(lifecycle, "utcnow", lambda: moment)

    return set_to


def test_numbers_follow_the_local_month_across_boundaries(app, clock):
    # 23:59:59 WIB on 30 September is still September; one second later it is October,
    # although it is 30 September in UTC.
    clock(datetime(2024, 9, 30, 16, 59, 59, tzinfo=UTC))
    assert [_report(), _report()] == ["BRT2409001", "BRT2409002"]
    clock(datetime(2024, 9, 30, 17, 0, 0, tzinfo=UTC))
    assert _report() == "BRT2410001"
    clock(datetime(2024, 10, 15, 3, 0, tzinfo=UTC))
    assert _report() == "BRT2410002"
    clock(datetime(2024, 12, 31, 17, 0, tzinfo=UTC))  # 1 January 2025, 00:00 WIB
    assert _report() == "BRT2501001"
    ticket = lifecycle.find("BRT2501001")
    assert ticket.created_at == datetime(2024, 12, 31, 17, 0, tzinfo=UTC)


def test_the_prefix_and_time_zone_are_settings(app, clock, monkeypatch):
    clock(datetime(2024, 9, 30, 20, 0, tzinfo=UTC))
    assert _report() == "BRT2410001"  # already October in Jakarta
    monkeypatch.setitem(app.config["KABAR"], "HELPDESK_TIMEZONE", "UTC")
    monkeypatch.setitem(app.config["KABAR"], "HELPDESK_PREFIX", "MON")
    assert _report() == "MON2409001"  # its own sequence, in the UTC month


def test_a_thousandth_report_gets_four_digits(app, clock):
    clock(datetime(2024, 9, 16, 12, 0, tzinfo=UTC))
    db.session.add(TicketCounter(prefix="BRT", period="2409", last=999))
    db.session.commit()
    assert _report() == "BRT24091000"


def test_a_failed_report_gives_its_number_back(app, clock):
    """The counter moves in the report's transaction: a rollback takes the number back."""
    clock(datetime(2024, 9, 16, 12, 0, tzinfo=UTC))
    assert numbering.next_number("BRT", lifecycle.utcnow(), "Asia/Jakarta") == "BRT2409001"
    db.session.rollback()
    assert _report() == "BRT2409001"


def test_concurrent_reports_get_distinct_consecutive_numbers(app, clock):
    """Real threads, each with its own connection, reporting at the same moment."""
    clock(datetime(2024, 9, 16, 12, 0, tzinfo=UTC))
    workers, numbers, errors = 12, [], []
    barrier = threading.Barrier(workers)

    def report(n: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                numbers.append(_report(f"laporan {n}"))
            except Exception as exc:  # reported below, not swallowed
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=report, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(numbers) == [f"BRT2409{n:03d}" for n in range(1, workers + 1)]
    stored = db.session.scalars(sa.select(Ticket.number)).all()
    assert sorted(stored) == sorted(numbers)
