"""Schedule triggers: APScheduler, in the runtime process only, jobs kept in the database.

The runtime holds a lease, so one scheduler runs however many web workers serve the API:
a cron fires once. Jobs live in the ``apscheduler_jobs`` table (APScheduler's own
``SQLAlchemyJobStore``), so a firing missed while the runtime was down runs once when it
comes back (coalesced, within ``MISFIRE_GRACE``). A firing only adds a workflow inbox
item; the inbox workers start the run, durably, like any other trigger.

Job ids name the workflow, its version and the trigger's index, so a changed schedule is
a new job while an unchanged one keeps its stored next run time across restarts.
``sync`` makes the jobs match the enabled workflows; the runtime calls it at start and
whenever the workflows change.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask, current_app

from server.models import Workflow, db
from server.runtime import wakeup
from server.workflows import inbox

log = logging.getLogger(__name__)

TABLE = "apscheduler_jobs"
MISFIRE_GRACE = 3600  # seconds: a firing later than this after its time is skipped
_app: Flask | None = None


def fire(workflow_id: int, index: int) -> None:
    """The job: queue a schedule item for the workflow (run by APScheduler's pool)."""
    assert _app is not None, "the scheduler fires only inside a started runtime"
    with _app.app_context():
        inbox.add_schedule(workflow_id, index)
        db.session.commit()
        wakeup.notify()


class Scheduler:
    def __init__(self, app: Flask):
        global _app
        _app = app
        self.app = app
        self.fingerprint: Any = None
        # An engine of its own, disposed of once the scheduler's thread has stopped.
        self.engine = sa.create_engine(db.engine.url)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": _JobStore(engine=self.engine, tablename=TABLE)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE,
            },
            timezone=app.config["KABAR"]["TIMEZONE"],
        )

    def start(self) -> None:
        self.scheduler.start()
        self.refresh()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)  # joins the scheduler's thread
        self.engine.dispose()

    def refresh(self) -> None:
        """Sync the jobs if the workflows changed since the last look (cheap to call)."""
        fingerprint = db.session.execute(
            sa.select(sa.func.count(Workflow.id), sa.func.max(Workflow.updated_at))
        ).one()
        db.session.rollback()
        if tuple(fingerprint) != self.fingerprint:
            self.fingerprint = tuple(fingerprint)
            self.sync()

    def sync(self) -> None:
        wanted = {}
        for workflow in db.session.scalars(sa.select(Workflow).where(Workflow.enabled.is_(True))):
            for index, trigger in enumerate(workflow.triggers):
                if trigger.get("type") == "schedule":
                    job_id = f"workflow:{workflow.id}:v{workflow.version}:{index}"
                    wanted[job_id] = (workflow.id, index, trigger)
        db.session.rollback()
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        existing = {job.id for job in self.scheduler.get_jobs()}
        for job_id, (workflow_id, index, trigger) in wanted.items():
            if job_id not in existing:
                self.scheduler.add_job(
                    fire,
                    trigger=_trigger(trigger),
                    id=job_id,
                    args=[workflow_id, index],
                    replace_existing=True,
                )
        log.info("workflow schedules: %d job(s)", len(wanted))


class _JobStore(SQLAlchemyJobStore):
    """APScheduler's store disposes of its engine while the scheduler's thread may still
    hold a connection; ``Scheduler.stop`` disposes of it after that thread ends."""

    def shutdown(self) -> None:
        pass


def _trigger(trigger: dict[str, Any]) -> CronTrigger | IntervalTrigger:
    zone = trigger.get("timezone") or current_app.config["KABAR"]["TIMEZONE"]
    if trigger.get("cron"):
        return CronTrigger.from_crontab(trigger["cron"], timezone=zone)
    return IntervalTrigger(seconds=trigger["interval_seconds"], timezone=zone)
