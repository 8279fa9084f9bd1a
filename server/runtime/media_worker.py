"""Downloads inbound media into the media store, off the event path.

The sink only records a ``MediaDownload`` job with the message; this worker takes due
jobs, asks the session's live transport for the bytes, stores them, and writes the
stored file's sha256 into the message. Failures retry with backoff, then give up with
the reason on the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask

from server.models import MediaDownload, Message, db, utcnow
from server.runtime.media_fetcher import MediaFetcher
from server.runtime.worker import Worker
from server.whatsapp.transport import Transport, TransportError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = 10


class MediaWorker(Worker):
    name = "kabar-media"

    def __init__(self, app: Flask, transport_for: Callable[[str], Transport | None]):
        super().__init__(app)
        self.transport_for = transport_for  # session id -> its live, connected transport
        # Outgoing media given by URL is fetched by a worker of its own (its pool waits
        # on other people's servers); it starts and stops with this one.
        self.fetcher = MediaFetcher(app)

    def start(self) -> None:
        super().start()
        self.fetcher.start()

    def stop(self) -> None:
        self.fetcher.stop()
        super().stop()

    def step(self) -> float:
        """Handle the due jobs of live sessions; wait a little when there were none."""
        self.fetcher.wake.set()  # the runtime wakes this worker when there is new work
        jobs = db.session.scalars(
            sa.select(MediaDownload)
            .where(MediaDownload.status == "pending", MediaDownload.next_at <= utcnow())
            .order_by(MediaDownload.next_at)
            .limit(BATCH)
        ).all()
        done_any = False
        for job in jobs:
            transport = self.transport_for(job.session_id)
            if transport is None:
                continue  # the session is not connected; try when it is
            self._download(job, transport)
            done_any = True
        return 0.0 if done_any else 2.0

    def _download(self, job: MediaDownload, transport: Transport) -> None:
        from server import media

        message = db.session.get(Message, job.message_seq)
        job.attempts += 1
        try:
            data = transport.download(message.media.get("handle") or {})
            stored = media.store(
                data,
                mimetype=message.media.get("mimetype") or "application/octet-stream",
                filename=message.media.get("filename"),
            )
        except Exception as exc:
            permanent = isinstance(exc, TransportError) and exc.permanent
            if permanent or job.attempts >= MAX_ATTEMPTS:
                job.status, job.error = "failed", f"{exc}"[:512]
                message.media = {**message.media, "download": "failed", "error": f"{exc}"[:255]}
            else:
                job.next_at = utcnow() + timedelta(seconds=5 * 2**job.attempts)
                job.error = f"{exc}"[:512]
            db.session.commit()
            return
        media_info = {k: v for k, v in message.media.items() if k != "handle"}
        message.media = {
            **media_info,
            "sha256": stored.sha256,
            "size": stored.size,
            "download": "stored",
        }
        job.status = "done"
        db.session.commit()
