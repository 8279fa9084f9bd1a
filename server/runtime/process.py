"""The runtime process: owns the live WhatsApp transports.

One loop (the control thread) takes the lease, beats, makes each session's live state
match ``desired_state``, runs commands from the web, and watches for silent sessions.
Starting and stopping transports happens only on this thread, one at a time (neonize
needs that). Transport callbacks only enqueue events; the sink thread stores them.
Look-ups run on a small pool so a slow one never stalls the loop.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask

from server import sessions
from server.events import Event, MessageReceived, SessionStatus
from server.models import RuntimeCommand, WaSession, db
from server.outbox.dispatcher import SessionSender
from server.runtime import commands, handlers, heartbeat, sink, wakeup
from server.runtime.media_worker import MediaWorker
from server.runtime.worker import Worker
from server.webhooks.dispatcher import WebhookWorker
from server.whatsapp import factory
from server.whatsapp.jids import InvalidPhone
from server.whatsapp.transport import Transport, TransportError
from server.workflows import store as workflow_store
from server.workflows.scheduler import Scheduler
from server.workflows.worker import InboxWorker, TimerWorker

log = logging.getLogger(__name__)

# An emitter waits this long for a message to be stored before its callback returns, so
# WhatsApp is not told "received" about a message Kabar has not saved.
PERSIST_WAIT_SECONDS = 10.0


@dataclass
class Live:
    session_id: str
    transport: Transport
    sender: SessionSender | None = None
    connected: bool = False  # from the transport's own SessionStatus events
    started_at: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)


class Runtime:
    def __init__(self, app: Flask):
        self.app = app
        self.holder = heartbeat.new_holder()
        self.live: dict[str, Live] = {}
        self.events: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kabar-lookup")
        self.media_worker: MediaWorker | None = None
        self.webhook_worker: WebhookWorker | None = None
        self.workflow_workers: list[Worker] = []
        self.scheduler: Scheduler | None = None
        settings = app.config["KABAR"]
        self.watchdog_after = float(settings["WATCHDOG_SECONDS"])
        self.region = settings["PHONE_REGION"]

    # --- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        with self.app.app_context():
            self._take_lease()
            commands.requeue_interrupted()
            self._prepare_sessions()
            self.sink_thread = threading.Thread(target=self._sink_loop, name="kabar-sink",
                                                daemon=True)
            self.sink_thread.start()
            self.media_worker = MediaWorker(self.app, self._connected_transport)
            self.media_worker.start()
            self.webhook_worker = WebhookWorker(self.app)
            self.webhook_worker.start()
            self._start_workflows()
            listener = wakeup.Listener(db.engine)
            last_beat = time.monotonic()
            log.info("runtime started (%s)", self.holder)
            try:
                while not self.stopping.is_set():
                    if time.monotonic() - last_beat >= heartbeat.BEAT_SECONDS:
                        if not heartbeat.beat(self.holder):
                            log.error("another runtime took the lease; stopping")
                            break
                        last_beat = time.monotonic()
                    self.tick()
                    listener.wait(0.5)
            finally:
                listener.close()
                self._shutdown()

    def tick(self) -> None:
        """One pass of the control loop (also driven directly by tests)."""
        try:
            self._reconcile()
            self._run_commands()
            self._watchdog()
            for live in self.live.values():  # new messages may be queued: senders look
                if live.sender is not None:
                    live.sender.wake.set()
            if self.media_worker is not None:
                self.media_worker.wake.set()
            if self.webhook_worker is not None:
                self.webhook_worker.wake.set()
            for worker in self.workflow_workers:
                worker.wake.set()
            if self.scheduler is not None:
                self.scheduler.refresh()
        except Exception:
            db.session.rollback()
            log.exception("runtime tick failed; continuing")

    def request_stop(self, *_args: Any) -> None:
        self.stopping.set()

    def _take_lease(self) -> None:
        while not heartbeat.acquire(self.holder):
            log.warning("another runtime holds the lease; waiting for it to stop")
            if self.stopping.wait(heartbeat.BEAT_SECONDS):
                raise SystemExit(0)

    def _prepare_sessions(self) -> None:
        """After a restart: auto-start sessions come back; the others stay stopped."""
        for session in db.session.scalars(sa.select(WaSession).where(
                WaSession.desired_state == "running", WaSession.auto_start.is_(False))):
            session.desired_state = "stopped"
            sessions.record_status(session, SessionStatus(
                status="stopped", reason="the runtime restarted and auto-start is off"))
        db.session.commit()

    def _start_workflows(self) -> None:
        """Load the workflows folder, then start the inbox and timer workers and the
        scheduler (schedule triggers fire here only: the runtime holds the lease)."""
        try:
            workflow_store.reload()
        except Exception:  # a broken folder must not keep sessions down
            db.session.rollback()
            log.exception("loading the workflows folder failed; continuing without it")
        count = max(1, int(self.app.config["KABAR"]["WORKFLOW_WORKERS"]))
        self.workflow_workers = [InboxWorker(self.app, index, count) for index in range(count)]
        self.workflow_workers.append(TimerWorker(self.app))
        for worker in self.workflow_workers:
            worker.start()
        self.scheduler = Scheduler(self.app)
        self.scheduler.start()

    def _shutdown(self) -> None:
        for session_id in list(self.live):
            self._stop_live(session_id, reason="the runtime is shutting down")
        self.media_worker.stop()
        self.webhook_worker.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        for worker in self.workflow_workers:
            worker.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.events.put(None)  # the sink stores what is queued, then stops
        self.sink_thread.join(timeout=30)
        heartbeat.release(self.holder)
        log.info("runtime stopped")

    # --- sessions -------------------------------------------------------------------------

    def _reconcile(self) -> None:
        rows = db.session.execute(sa.select(
            WaSession.id, WaSession.transport, WaSession.desired_state, WaSession.settings,
            WaSession.deleted_at, WaSession.status)).all()
        for row in rows:
            live = row.id in self.live
            if row.deleted_at is not None:
                if live:
                    self._stop_live(row.id, reason="deleted", emit=False)
                session = db.session.get(WaSession, row.id)
                sessions.purge(session)
            elif row.desired_state == "running" and not live:
                self._start_live(row.id, row.transport, row.settings or {})
            elif row.desired_state != "running" and live:
                # After logged_out, banned or failed the session already says why it ended.
                self._stop_live(row.id, reason="stopped by request",
                                emit=row.status not in sessions.TERMINAL)

    def _start_live(self, session_id: str, transport_name: str, settings: dict) -> None:
        store = sessions.store_dir(session_id)
        store.mkdir(parents=True, exist_ok=True)
        owner: list[Live] = []  # the Live this transport belongs to, once it exists
        transport = factory(transport_name)(
            session_id=session_id, store_dir=store, emit=self._emitter(session_id, owner),
            options=settings.get(transport_name, {}))
        live = self.live[session_id] = Live(session_id, transport)
        owner.append(live)
        live.sender = SessionSender(self.app, session_id, transport, lambda: live.connected)
        live.sender.start()
        try:
            transport.start()
        except Exception as exc:
            log.exception("session %s failed to start", session_id)
            self.live.pop(session_id, None)
            live.sender.stop()
            session = db.session.get(WaSession, session_id)
            sessions.record_status(session, SessionStatus(
                status="failed", reason=f"could not start: {exc}"))

    def _stop_live(self, session_id: str, *, reason: str, emit: bool = True) -> None:
        live = self.live.pop(session_id, None)
        if live is None:
            return
        live.connected = False
        if live.sender is not None:
            live.sender.stop()
        try:
            live.transport.stop()
        except Exception:
            log.exception("session %s did not stop cleanly", session_id)
        if emit:
            self.events.put((session_id, SessionStatus(status="stopped", reason=reason), None,
                             False))

    def _watchdog(self) -> None:
        """A session that says connected but has been silent is probed, and reconnected if
        the probe fails."""
        now = time.monotonic()
        for live in list(self.live.values()):
            if now - live.last_activity < self.watchdog_after:
                continue
            live.last_activity = now
            try:
                alive = live.transport.is_connected()
            except Exception:
                alive = False
            if not alive:
                log.warning("session %s silent and not connected; reconnecting",
                            live.session_id)
                self.restart(live.session_id, reason="watchdog: no activity, reconnecting")

    def restart(self, session_id: str, *, reason: str) -> None:
        self._stop_live(session_id, reason=reason, emit=False)
        self.events.put((session_id, SessionStatus(status="reconnecting", reason=reason), None,
                         False))
        session = db.session.get(WaSession, session_id)
        if session is not None and session.deleted_at is None:
            session.desired_state = "running"
            db.session.commit()
            self._start_live(session_id, session.transport, session.settings or {})

    # --- events ---------------------------------------------------------------------------

    def _emitter(self, session_id: str, owner: list[Live]):
        """The transport's ``emit``. A transport that was stopped or replaced (a restart)
        may still report its own disconnect; that status is dropped so it cannot mark the
        new connection down. Messages from it are still stored."""

        def emit(event: Event) -> None:
            live = owner[0] if owner else None
            current = live is not None and self.live.get(session_id) is live
            if isinstance(event, SessionStatus) and live is not None and not current:
                log.info("dropping %s from a replaced transport of session %s",
                         event.status, session_id)
                return
            if current:
                live.last_activity = time.monotonic()
                if isinstance(event, SessionStatus):
                    live.connected = event.status == "connected"
                    if live.connected and live.sender is not None:
                        live.sender.wake.set()
            if isinstance(event, MessageReceived):
                done = threading.Event()
                self.events.put((session_id, event, done, True))
                if not done.wait(PERSIST_WAIT_SECONDS):
                    log.error("message %s not stored within %ss", event.message.id,
                              PERSIST_WAIT_SECONDS)
            else:
                self.events.put((session_id, event, None, True))

        return emit

    def _sink_loop(self) -> None:
        with self.app.app_context():
            while True:
                item = self.events.get()
                if item is None:
                    return
                session_id, event, done, from_transport = item
                try:
                    sink.handle(session_id, event, from_transport=from_transport)
                    for worker in self.workflow_workers:  # a stored event may be their work
                        worker.wake.set()
                except Exception:
                    db.session.rollback()
                    log.exception("could not store %s for session %s", event.type, session_id)
                finally:
                    if done is not None:
                        done.set()

    # --- commands -------------------------------------------------------------------------

    def _run_commands(self) -> None:
        for command in commands.claim_pending():
            if command.kind in handlers.ON_POOL:
                self.pool.submit(self._run_in_context, command.id)
            else:
                self._run(command)

    def _run_in_context(self, command_id: int) -> None:
        with self.app.app_context():
            self._run(db.session.get(RuntimeCommand, command_id))

    def _run(self, command: RuntimeCommand) -> None:
        handler = handlers.HANDLERS.get(command.kind)
        try:
            if handler is None:
                raise TransportError(f"Unknown command {command.kind!r}.",
                                     code="unknown_command", permanent=True)
            result = handler(self, command)
        except TransportError as exc:
            commands.finish(command, error_code=exc.code, error_message=str(exc))
        except (InvalidPhone, ValueError) as exc:
            commands.finish(command, error_code="invalid_input", error_message=str(exc))
        except Exception as exc:
            log.exception("command %s failed", command.kind)
            commands.finish(command, error_code="runtime_error",
                            error_message=f"{type(exc).__name__}: {exc}")
        else:
            commands.finish(command, result=result)

    def _connected_transport(self, session_id: str) -> Transport | None:
        live = self.live.get(session_id)
        return live.transport if live is not None and live.connected else None

    def transport_for(self, command: RuntimeCommand) -> Transport:
        live = self.live.get(command.session_id or "")
        if live is None:
            raise TransportError("The session is not running; start it first.",
                                 code="session_not_running")
        return live.transport


def main(app: Flask) -> None:
    """``kabar runtime``: run until SIGTERM/SIGINT."""
    runtime = Runtime(app)
    signal.signal(signal.SIGTERM, runtime.request_stop)
    signal.signal(signal.SIGINT, runtime.request_stop)
    runtime.run()

