"""Downloads inbound media into the media store, off the event path.

The sink only records a ``MediaDownload`` job with the message; this worker takes due
jobs, asks the session's live transport for the bytes, stores them, and writes the
stored file's sha256 into the message. Failures retry with backoff, then give up with
the reason on the message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask

from server.models import MediaDownload, Message, db, utcnow
from server.whatsapp.transport import Transport, TransportError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BATCH = 10


class MediaWorker:
    def __init__(self, app: Flask, transport_for: Callable[[str], Transport | None]):
        self.app = app
        self.transport_for = transport_for  # session id -> its live, connected transport
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kabar-media", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        with self.app.app_context():
            while not self.stopping.is_set():
                try:
                    busy = self.step()
                except Exception:
                    db.session.rollback()
                    log.exception("media worker failed; retrying")
                    busy = False
                if not busy:
                    self.wake.wait(2.0)
                    self.wake.clear()

    def step(self) -> bool:
        """Handle the due jobs of live sessions; True if there was something to do."""
        jobs = db.session.scalars(
            sa.select(MediaDownload).where(MediaDownload.status == "pending",
                                           MediaDownload.next_at <= utcnow())
            .order_by(MediaDownload.next_at).limit(BATCH)).all()
        done_any = False
        for job in jobs:
            transport = self.transport_for(job.session_id)
            if transport is None:
                continue  # the session is not connected; try when it is
            self._download(job, transport)
            done_any = True
        return done_any

    def _download(self, job: MediaDownload, transport: Transport) -> None:
        from server import media

        message = db.session.get(Message, job.message_seq)
        job.attempts += 1
        try:
            data = transport.download(message.media.get("handle") or {})
            stored = media.store(data, mimetype=message.media.get("mimetype") or
                                 "application/octet-stream",
                                 filename=message.media.get("filename"))
        except Exception as exc:
            permanent = isinstance(exc, TransportError) and exc.permanent
            if permanent or job.attempts >= MAX_ATTEMPTS:
                job.status, job.error = "failed", f"{exc}"[:512]
                message.media = {**message.media, "download": "failed", "error": f"{exc}"[:255]}
            else:
                job.next_at = utcnow() + timedelta(seconds=5 * 2 ** job.attempts)
                job.error = f"{exc}"[:512]
            db.session.commit()
            return
        media_info = {k: v for k, v in message.media.items() if k != "handle"}
        message.media = {**media_info, "sha256": stored.sha256, "size": stored.size,
                         "download": "stored"}
        job.status = "done"
        db.session.commit()
