"""A background worker of the runtime: one thread that repeats ``step()``.

``step()`` returns how many seconds to wait before the next step (0 to go on at once);
``wake`` cuts a wait short when new work arrives. A failing step is logged, rolled back
and retried a second later, so one bad row never stops the worker.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from server.models import db

log = logging.getLogger(__name__)


class Worker:
    name = "kabar-worker"

    def __init__(self, app: Flask):
        self.app = app
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=30)

    def prepare(self) -> None:
        """Runs once in the thread's app context before the first step."""

    def step(self) -> float:
        raise NotImplementedError

    def _run(self) -> None:
        with self.app.app_context():
            self.prepare()
            while not self.stopping.is_set():
                try:
                    delay = self.step()
                except Exception:
                    db.session.rollback()
                    log.exception("%s failed; retrying", self.thread.name)
                    delay = 1.0
                if delay > 0:
                    self.wake.wait(delay)
                    self.wake.clear()
