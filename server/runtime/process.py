"""The runtime process: owns the live WhatsApp sessions.

One loop (the control thread) takes the lease, beats, makes each session's live state
match ``desired_state``, runs commands from the web, supervises the session hosts and
watches for silent sessions. Each live session runs in a host (``hosts.py``): a child
process of its own for neonize, in this process for the sandbox. A host whose process
died is restarted with backoff, and only that session is affected. Stopping a process
host never blocks this loop: it is reaped on a thread of its own, and the session starts
again only once its previous process has ended. Transport callbacks only enqueue events;
the sink thread stores them. Look-ups run on a small pool so a slow one never stalls the
loop; the outbox dispatcher sends for every session from one bounded pool.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import Flask

from server import eventlog, sessions
from server.events import Event, SessionStatus
from server.metrics import RUNTIME_STATEMENTS, SESSION_PROCESS_EXITS
from server.models import RuntimeCommand, WaSession, db, utcnow
from server.outbox.dispatcher import OutboxDispatcher
from server.runtime import acks, commands, handlers, heartbeat, leases, sink, wakeup
from server.runtime.hosts import InlineHost, ProcessHost, SessionHost
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

# A crashed session host starts again after 1, 2, 4 ... seconds, at most this many; one
# that ran this long before it died was healthy and starts again at once.
RESTART_MAX_BACKOFF = 60.0
HEALTHY_AFTER = 60.0
# Sessions a host over its share gives back per beat (another host joined).
REBALANCE_PER_BEAT = 5
# Tries to store an event that fails for a reason other than the database being down.
SINK_ATTEMPTS = 3
# At most this many events the sink stores in one transaction.
SINK_BATCH = 200
# The control loop reads the sessions and the commands when woken (``wakeup``: the web's
# notify after each write, PostgreSQL's NOTIFY or SQLite's wake-up file) and otherwise
# this often only, so an idle runtime costs the same with 0 or 500 sessions. The poll
# catches what no notify announces: a wake-up lost, a lease another host let expire, a
# workflow's schedule changed.
POLL_SECONDS = 5.0
# Between passes it looks this often at what needs no database: a session host's process
# that ended, a silent session for the watchdog.
TEND_SECONDS = 0.5


@dataclass
class Live:
    session_id: str
    host: SessionHost
    connected: bool = False  # from the transport's own SessionStatus events
    started_at: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)

    @property
    def transport(self) -> Transport:
        return self.host.transport


class Pending(NamedTuple):
    """An event on its way to the sink. ``token``: the lease token of the host's session
    when a transport emitted it (None for the runtime's own statuses: those need only
    that no other host holds the session)."""

    session_id: str
    event: Event
    done: Any = None
    from_transport: bool = False
    token: int | None = None


@dataclass
class Restart:
    """A session whose host died: when it may start again, and how often it has died in
    a row (for the backoff)."""

    at: float
    crashes: int


class Runtime:
    def __init__(self, app: Flask):
        self.app = app
        self.holder = heartbeat.new_holder()
        self.live: dict[str, Live] = {}
        self.restarts: dict[str, Restart] = {}
        self._probed: queue.Queue = queue.Queue()  # (session id, Live) the watchdog found dead
        self.reaping: dict[str, threading.Thread] = {}  # stopping hosts, by session
        self.events: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self._sink_stopping = threading.Event()  # the sink gives up retrying: shutdown
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kabar-lookup")
        self.dispatcher: OutboxDispatcher | None = None
        self.media_worker: MediaWorker | None = None
        self.webhook_worker: WebhookWorker | None = None
        self.workflow_workers: list[Worker] = []
        self.scheduler: Scheduler | None = None
        settings = app.config["KABAR"]
        self.watchdog_after = float(settings["WATCHDOG_SECONDS"])
        self.region = settings["PHONE_REGION"]
        self.in_processes = set(settings["SESSION_PROCESSES"])
        self.stop_timeout = float(settings["SESSION_STOP_SECONDS"])
        self.capacity = int(settings["RUNTIME_CAPACITY"])
        self.leases: dict[str, int] = {}  # sessions this host holds -> lease token
        self.is_leader = False
        self.draining = False
        self.renewed_at = time.monotonic()
        self.poll_seconds = POLL_SECONDS
        self.passes = 0  # passes of the control loop made (tests wait for the first)
        self.beat_claimed = False  # the last beat claimed sessions: start them now

    # --- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        with self.app.app_context():
            began = utcnow()
            leases.register(self.holder, capacity=self.capacity)
            self._beat()
            self._prepare_sessions(began)
            self.sink_thread = threading.Thread(
                target=self._sink_loop, name="kabar-sink", daemon=True
            )
            self.sink_thread.start()
            self.dispatcher = OutboxDispatcher(
                self.app, int(self.app.config["KABAR"]["SEND_WORKERS"])
            )
            self.dispatcher.start()
            self.media_worker = MediaWorker(self.app, self._connected_transport)
            self.media_worker.start()
            listener = wakeup.Listener(db.engine)
            unsubscribe = wakeup.subscribe(self._wake_workers)
            last_beat = time.monotonic()
            last_pass, woken = 0.0, True
            log.info("runtime started (%s)", self.holder)
            try:
                while not self.stopping.is_set():
                    now = time.monotonic()
                    if now - last_beat >= heartbeat.BEAT_SECONDS:
                        self._beat()
                        last_beat = time.monotonic()
                        woken = woken or self.beat_claimed
                    if (
                        woken
                        or now - last_pass >= self.poll_seconds
                        or self._restart_due(last_pass)
                    ):
                        last_pass = now
                        self.tick()
                    else:
                        self._tend()
                    woken = listener.wait(TEND_SECONDS)
            finally:
                unsubscribe()
                listener.close()
                self._shutdown()

    def tick(self) -> None:
        """One pass of the control loop (also driven directly by tests)."""
        self.passes += 1
        try:
            self._supervise()
            self._reconcile()
            self._run_commands()
            self._watchdog()
            self._wake_workers()
            if self.scheduler is not None:
                self.scheduler.refresh()
        except Exception:
            db.session.rollback()
            log.exception("runtime tick failed; continuing")

    def _tend(self) -> None:
        """Between passes: what needs no database unless something happened."""
        try:
            self._supervise()
            self._watchdog()
        except Exception:
            db.session.rollback()
            log.exception("runtime tend failed; continuing")

    def _restart_due(self, since: float) -> bool:
        """A crashed session's backoff ended since the last pass: start it now."""
        now = time.monotonic()
        return any(since < restart.at <= now for restart in list(self.restarts.values()))

    def _wake_workers(self) -> None:
        """New work may be there (a message queued, a run to resume, a delivery): each
        worker looks now. Called by each pass of the loop (woken, or the safety poll),
        and at once by a notify in this process (``wakeup.subscribe``)."""
        for worker in (
            self.dispatcher,
            self.media_worker,
            self.webhook_worker,
            *self.workflow_workers,
        ):
            if worker is not None:
                worker.wake.set()

    def request_stop(self, *_args: Any) -> None:
        self.stopping.set()

    # --- leases: this host, its sessions, and the leader's work -----------------------------

    def _beat(self) -> None:
        """Renew this host and its session leases; stop at once any session another host
        took; take or keep the leader lease (work that is not per session runs on the
        leader only). A host that cannot renew stops its sessions by itself before
        another may claim them."""
        self.beat_claimed = False
        try:
            held, self.draining = leases.beat(self.holder)
        except Exception:
            db.session.rollback()
            log.exception("could not renew this host's leases")
            if time.monotonic() - self.renewed_at > leases.SELF_FENCE.total_seconds():
                self._self_fence()
            return
        self.renewed_at = time.monotonic()
        for session_id in list(self.live):
            if held.get(session_id) != self.leases.get(session_id):
                log.warning("session %s: another host holds it now; stopping it here", session_id)
                self._drop(session_id)
        self.leases = held
        try:
            if not self.draining:
                share = leases.fair_share()
                self._rebalance(share)
                # Leases another host let expire announce nothing: claim them each beat.
                self.beat_claimed = self._claim(share)
        except Exception:
            db.session.rollback()
            log.exception("rebalancing or claiming failed")
        try:
            if self.is_leader and not heartbeat.beat(self.holder):
                log.error("another host took the leader lease")
                self._lose_leadership()
            elif not self.is_leader and heartbeat.acquire(self.holder):
                self._become_leader()
            if self.is_leader:
                commands.requeue_interrupted(leases.live_holders())
        except Exception:
            db.session.rollback()
            log.exception("leader lease failed")

    def _self_fence(self) -> None:
        """Cut off from the database past the self-fence time: stop every session now
        (writing nothing), so that no session is ever live on two hosts."""
        if self.live:
            log.error(
                "cut off from the database; stopping %d session(s) before their leases expire",
                len(self.live),
            )
        for session_id in list(self.live):
            self._drop(session_id)
        self.leases = {}
        if self.is_leader:
            self._lose_leadership()

    def _drop(self, session_id: str) -> None:
        """Stop a session this host no longer holds, writing nothing for it."""
        self._stop_live(session_id, reason="", emit=False)
        self.restarts.pop(session_id, None)

    def _become_leader(self) -> None:
        log.info("this host leads: webhooks, workflows and schedules run here")
        self.is_leader = True
        try:
            commands.requeue_interrupted(leases.live_holders())
            self.webhook_worker = WebhookWorker(self.app)
            self.webhook_worker.start()
            self._start_workflows()
        except Exception:
            db.session.rollback()
            log.exception("starting the leader's work failed")

    def _lose_leadership(self) -> None:
        self.is_leader = False
        if self.webhook_worker is not None:
            self.webhook_worker.stop()
            self.webhook_worker = None
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        for worker in self.workflow_workers:
            worker.stop()
        self.workflow_workers = []

    def _prepare_sessions(self, began: datetime) -> None:
        """After a restart: auto-start sessions come back; the others, which no other
        host is running, stay stopped. A session someone started after this runtime
        began (while it was taking its leases) is theirs: it runs."""
        now = utcnow()
        for session in db.session.scalars(
            sa.select(WaSession).where(
                WaSession.desired_state == "running",
                WaSession.auto_start.is_(False),
                WaSession.updated_at < began,
                sa.or_(
                    WaSession.lease_holder.is_(None),
                    WaSession.lease_until < now,
                    WaSession.lease_holder == self.holder,
                ),
            )
        ):
            session.desired_state = "stopped"
            sessions.record_status(
                session,
                SessionStatus(
                    status="stopped", reason="the runtime restarted and auto-start is off"
                ),
            )
        db.session.commit()

    def _start_workflows(self) -> None:
        """Load the workflows folder, then start the inbox and timer workers and the
        scheduler (schedule triggers fire on the leader only)."""
        try:
            workflow_store.reload()
        except Exception:  # a broken folder must not keep sessions down
            db.session.rollback()
            log.exception("loading the workflows folder failed; continuing without it")
        count = max(1, int(self.app.config["KABAR"]["WORKFLOW_WORKERS"]))
        inbox_workers = [InboxWorker(self.app, index, count) for index in range(count)]
        inbox_workers[0].siblings = inbox_workers[1:]
        self.workflow_workers = [*inbox_workers]
        self.workflow_workers.append(TimerWorker(self.app))
        for worker in self.workflow_workers:
            worker.start()
        self.scheduler = Scheduler(self.app)
        self.scheduler.start()

    def _shutdown(self) -> None:
        """Stop every session at once (each bounded by its stop timeout), then the rest,
        and give the leases back so other hosts take over at once."""
        for session_id in list(self.live):
            self._stop_live(session_id, reason="the runtime is shutting down")
        for thread in list(self.reaping.values()):
            thread.join(self.stop_timeout + 5)
        self.dispatcher.stop()
        self.media_worker.stop()
        self._lose_leadership()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.events.put(None)  # the sink stores what is queued, then stops
        self.sink_thread.join(timeout=30)
        if self.sink_thread.is_alive():  # the database is down: stop retrying
            self._sink_stopping.set()
            self.sink_thread.join(timeout=10)
        try:
            leases.release_host(self.holder)
            heartbeat.release(self.holder)
            wakeup.notify()  # the other hosts take over now
        except Exception:
            db.session.rollback()
            log.exception("could not give the leases back; they expire by themselves")
        log.info("runtime stopped")

    # --- sessions -------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Claim this host's share of the sessions that should run, then make each held
        session's live state match what the database asks for."""
        if self.draining:
            for session_id in list(self.leases):
                self._give_back(session_id, reason="its host is draining; another takes over")
        else:
            self._claim()
        rows = db.session.execute(
            sa.select(
                WaSession.id,
                WaSession.transport,
                WaSession.desired_state,
                WaSession.settings,
                WaSession.deleted_at,
                WaSession.status,
                WaSession.lease_holder,
                WaSession.lease_until,
            )
        ).all()
        now, utc = time.monotonic(), utcnow()
        for row in rows:
            live, mine = row.id in self.live, row.id in self.leases
            if row.deleted_at is not None:
                if live:
                    self._stop_live(row.id, reason="deleted", emit=False)
                if row.id in self.reaping:
                    continue  # its process is still ending; purge the store after
                unheld = (
                    row.lease_holder is None or row.lease_until is None or row.lease_until < utc
                )
                if mine or (self.is_leader and unheld):
                    self.restarts.pop(row.id, None)
                    self.leases.pop(row.id, None)
                    sessions.purge(db.session.get(WaSession, row.id))
            elif row.desired_state == "running" and not live:
                restart = self.restarts.get(row.id)
                if not mine or row.id in self.reaping or (restart is not None and restart.at > now):
                    continue  # another host's, its process still ending, or backing off
                self._start_live(row.id, row.transport, row.settings or {})
            elif row.desired_state != "running":
                self.restarts.pop(row.id, None)
                if live:
                    # After logged_out, banned or failed the session already says why.
                    self._stop_live(
                        row.id,
                        reason="stopped by request",
                        emit=row.status not in sessions.TERMINAL,
                    )
                if mine:
                    leases.release(self.holder, row.id)
                    self.leases.pop(row.id, None)

    def _claim(self, share: int | None = None) -> bool:
        """Take this host's share of the sessions nobody holds (new, given back, or whose
        host stopped renewing). True if it took any."""
        if self.draining or time.monotonic() - self.renewed_at >= leases.SELF_FENCE.total_seconds():
            return False
        claimed = leases.claim(
            self.holder, capacity=self.capacity, held=len(self.leases), share=share
        )
        self.leases.update(claimed)
        return bool(claimed)

    def _give_back(self, session_id: str, *, reason: str) -> None:
        """Stop a session here and free its lease, for another host to take (drain,
        rebalance). The other host reports the session's statuses from then on; but a
        session stopped by request meanwhile is nobody's to run, so say "stopped" here."""
        wanted = (
            db.session.scalar(sa.select(WaSession.desired_state).where(WaSession.id == session_id))
            == "running"
        )
        self._stop_live(
            session_id, reason=reason if wanted else "stopped by request", emit=not wanted
        )
        self.restarts.pop(session_id, None)
        self.leases.pop(session_id, None)
        leases.release(self.holder, session_id)
        wakeup.notify()  # the other hosts claim it now, not at their next poll
        log.info("session %s given back: %s", session_id, reason)

    def _rebalance(self, share: int) -> None:
        """After another host joined: give back what is over this host's share, a few
        sessions a beat so they do not all reconnect at once."""
        if len(self.leases) <= share:
            return  # nothing over the share (no need to read which)
        surplus = [s for s in leases.surplus(self.holder, share) if s in self.leases]
        for session_id in surplus[:REBALANCE_PER_BEAT]:
            self._give_back(session_id, reason="rebalanced to another host")

    def _host(self, session_id: str, transport_name: str, settings: dict, emit) -> SessionHost:
        options = settings.get(transport_name, {})
        store = sessions.store_dir(session_id)
        store.mkdir(parents=True, exist_ok=True)
        if transport_name in self.in_processes:
            return ProcessHost(
                session_id=session_id,
                transport_name=transport_name,
                store_dir=store,
                options=options,
                emit=emit,
                stop_timeout=self.stop_timeout,
            )
        transport = factory(transport_name)(
            session_id=session_id,
            store_dir=store,
            emit=lambda event: emit(event, None),
            options=options,
        )
        return InlineHost(session_id, transport)

    def _start_live(self, session_id: str, transport_name: str, settings: dict) -> None:
        owner: list[Live] = []  # the Live this host belongs to, once it exists
        try:
            host = self._host(
                session_id, transport_name, settings, self._emitter(session_id, owner)
            )
            live = self.live[session_id] = Live(session_id, host)
            owner.append(live)
            if self.dispatcher is not None:
                self.dispatcher.attach(
                    session_id,
                    host.transport,
                    lambda: live.connected,
                    lease=(self.holder, self.leases.get(session_id)),
                )
            host.start()
        except Exception as exc:
            log.exception("session %s failed to start", session_id)
            self.live.pop(session_id, None)
            if self.dispatcher is not None:
                self.dispatcher.detach(session_id)
            session = db.session.get(WaSession, session_id)
            sessions.record_status(
                session, SessionStatus(status="failed", reason=f"could not start: {exc}"[:255])
            )
            return
        session = db.session.get(WaSession, session_id)
        session.host = _host_name(host)
        db.session.commit()

    def _stop_live(self, session_id: str, *, reason: str, emit: bool = True) -> None:
        """Stop a session's host. A process host is stopped on a thread of its own
        (bounded by the stop timeout, then killed), so a hung session never holds up
        this loop; the session starts again only after that thread has ended."""
        live = self.live.pop(session_id, None)
        if live is None:
            return
        live.connected = False
        if self.dispatcher is not None:
            self.dispatcher.detach(session_id)
        if isinstance(live.host, ProcessHost):
            thread = threading.Thread(
                target=self._reap, args=(live.host,), daemon=True, name=f"kabar-reap-{session_id}"
            )
            self.reaping[session_id] = thread
            thread.start()
        else:
            try:
                live.host.stop(self.stop_timeout)
            except Exception:
                log.exception("session %s did not stop cleanly", session_id)
        if emit:
            self.events.put(Pending(session_id, SessionStatus(status="stopped", reason=reason)))

    def _reap(self, host: ProcessHost) -> None:
        try:
            host.stop(self.stop_timeout + 1)
        except Exception:
            log.exception("session %s: stopping its process failed", host.session_id)
            host.kill()
        finally:
            self.reaping.pop(host.session_id, None)
            wakeup.wake_local()  # the loop may start the session again now

    def _supervise(self) -> None:
        """A session host whose process ended by itself is restarted, with backoff when it
        keeps dying; the session shows why, and how often it restarted."""
        for live in list(self.live.values()):
            host = live.host
            if host.alive():
                continue
            self.live.pop(live.session_id, None)
            if self.dispatcher is not None:
                self.dispatcher.detach(live.session_id)
            host.stop(0)  # closes the channel of the dead process
            previous = self.restarts.get(live.session_id)
            lived = time.monotonic() - live.started_at
            recycle = getattr(host, "recycle", False)
            crashes = (
                0 if recycle or lived > HEALTHY_AFTER or previous is None else previous.crashes + 1
            )
            delay = 0.0 if recycle else min(2.0**crashes, RESTART_MAX_BACKOFF)
            self.restarts[live.session_id] = Restart(time.monotonic() + delay, crashes)
            why = host.exit_reason()
            SESSION_PROCESS_EXITS.labels("recycle" if recycle else "crash").inc()
            log.log(
                logging.INFO if recycle else logging.ERROR,
                "session %s: %s after %.0f s; starting it again in %.0f s",
                live.session_id,
                why,
                lived,
                delay,
            )
            session = db.session.get(WaSession, live.session_id)
            if session is None:
                continue
            if not recycle:
                session.restarts += 1
            db.session.commit()
            self.events.put(
                Pending(
                    live.session_id,
                    SessionStatus(
                        status="reconnecting",
                        reason=f"{why}; starting again in {delay:.0f} s"[:255],
                    ),
                )
            )

    def _watchdog(self) -> None:
        """A session that says connected but has been silent is probed, and reconnected if
        the probe fails. Probes run on the look-up pool (a hung session's probe must not
        hold this loop); their verdicts are acted on here, at the next tick."""
        while True:
            try:
                session_id, live = self._probed.get_nowait()
            except queue.Empty:
                break
            if self.live.get(session_id) is live:  # not restarted meanwhile
                log.warning("session %s silent and not connected; reconnecting", session_id)
                self.restart(session_id, reason="watchdog: no activity, reconnecting")
        now = time.monotonic()
        for live in list(self.live.values()):
            if now - live.last_activity < self.watchdog_after:
                continue
            live.last_activity = now
            self.pool.submit(self._probe, live)

    def _probe(self, live: Live) -> None:
        try:
            alive = live.transport.is_connected()
        except Exception:
            alive = False
        if not alive:
            self._probed.put((live.session_id, live))

    def restart(self, session_id: str, *, reason: str) -> None:
        """Stop the session's host and start it again (a process host: once the old
        process has ended, so two never share a device store)."""
        self._stop_live(session_id, reason=reason, emit=False)
        self.events.put(Pending(session_id, SessionStatus(status="reconnecting", reason=reason)))
        session = db.session.get(WaSession, session_id)
        if session is not None and session.deleted_at is None:
            session.desired_state = "running"
            db.session.commit()
            if session_id not in self.reaping:
                self._start_live(session_id, session.transport, session.settings or {})

    # --- events ---------------------------------------------------------------------------

    def _emitter(self, session_id: str, owner: list[Live]):
        """The hosts' ``emit(event, done)``. A transport that was stopped or replaced (a
        restart) may still report its own disconnect; that status is dropped so it cannot
        mark the new connection down. Messages from it are still stored.

        ``done`` (from a process host) is set once the event is stored. Without one, an
        inbound message waits here until it is stored, so the transport's callback does
        not return (and WhatsApp is not told "received") before Kabar has saved it."""

        def emit(event: Event, done: Any = None) -> None:
            live = owner[0] if owner else None
            current = live is not None and self.live.get(session_id) is live
            if isinstance(event, SessionStatus) and live is not None and not current:
                log.info(
                    "dropping %s from a replaced transport of session %s", event.status, session_id
                )
                if done is not None:
                    done.set()
                return
            if current:
                live.last_activity = time.monotonic()
                if isinstance(event, SessionStatus):
                    live.connected = event.status == "connected"
                    if live.connected and self.dispatcher is not None:
                        self.dispatcher.wake.set()
            if done is None and event.stored_before_return:
                stored = threading.Event()
                self.events.put(
                    Pending(session_id, event, stored, True, self.leases.get(session_id))
                )
                if acks.defer(stored, self.sink_thread.is_alive):
                    return  # a sender's batch waits for it with the others
                while not stored.wait(1.0):
                    if not self.sink_thread.is_alive():
                        log.error("%s not stored: the runtime is stopping", event.type)
                        return
            else:
                self.events.put(Pending(session_id, event, done, True, self.leases.get(session_id)))

        return emit

    def _sink_loop(self) -> None:
        """Store events as they come; what piled up meanwhile goes in one transaction
        (at most SINK_BATCH), so a burst costs a commit per batch, not per event."""
        with self.app.app_context():
            while True:
                item = self.events.get()
                if item is None:
                    return
                batch, last = [item], False
                while len(batch) < SINK_BATCH:
                    try:
                        more = self.events.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        last = True
                        break
                    batch.append(more)
                self._store_batch(batch)
                # A stored event may be their work (a workflow's inbox item, a delivery).
                work = eventlog.work_added()
                if "workflows" in work:
                    for worker in self.workflow_workers:
                        worker.wake.set()
                if "webhooks" in work and self.webhook_worker is not None:
                    self.webhook_worker.wake.set()
                if last:
                    return

    def _store_batch(self, batch: list[Pending]) -> None:
        """Store ``batch`` in order: runs of groupable events together, each event
        acknowledged (``done``) only once committed. A group that fails is rolled back
        and stored one event at a time, with ``_store``'s retries and lease checks."""
        group: list[Pending] = []

        def flush() -> None:
            if len(group) > 1:
                try:
                    sink.handle_many(
                        [
                            (
                                item.session_id,
                                item.event,
                                item.from_transport,
                                (self.holder, item.token),
                            )
                            for item in group
                        ]
                    )
                except Exception as exc:  # each goes alone below
                    db.session.rollback()
                    log.warning(
                        "storing %d events together failed (%s); one at a time",
                        len(group),
                        str(exc).splitlines()[0][:300],
                    )
                else:
                    for item in group:
                        if item.done is not None:
                            item.done.set()
                    group.clear()
                    return
            for item in group:
                if self._store(item) and item.done is not None:
                    item.done.set()
            group.clear()

        for item in batch:
            if not sink.groupable(item.event):
                flush()  # what came before it, then it alone
            group.append(item)
            if not sink.groupable(item.event):
                flush()
        flush()

    def _store(self, item: Pending) -> bool:
        """Store one event, retrying while the database is unreachable (an outage delays
        events, it does not lose them: the transport's callback is not released, so
        WhatsApp keeps an unsaved message). An event that fails for any other reason is
        a bug: retried a few times, then logged whole and given up. An event for a
        session this host no longer holds is not written (another host has it)."""
        session_id, event = item.session_id, item.event
        fence = (self.holder, item.token)
        delay, other_failures = 0.2, 0
        while True:
            try:
                sink.handle(session_id, event, from_transport=item.from_transport, fence=fence)
                return True
            except leases.LeaseLost:
                db.session.rollback()
                log.warning(
                    "not storing %s for session %s: another host holds it", event.type, session_id
                )
                return True
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                db.session.rollback()
                if self._sink_stopping.is_set():
                    log.error(
                        "could not store %s for session %s before stopping: %s",
                        event.type,
                        session_id,
                        exc,
                    )
                    return False
                log.warning(
                    "database unavailable storing %s for session %s; retrying in %.1f s: %s",
                    event.type,
                    session_id,
                    delay,
                    exc,
                )
            except Exception:
                db.session.rollback()
                other_failures += 1
                if other_failures >= SINK_ATTEMPTS:
                    log.exception("giving up storing %r for session %s", event, session_id)
                    return True  # release the callback: retrying cannot help
                log.exception("could not store %s for session %s; retrying", event.type, session_id)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    # --- commands -------------------------------------------------------------------------

    def _run_commands(self) -> None:
        for command in commands.claim_pending(
            self.holder, sessions=set(self.leases), leader=self.is_leader
        ):
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
                raise TransportError(
                    f"Unknown command {command.kind!r}.", code="unknown_command", permanent=True
                )
            result = handler(self, command)
        except TransportError as exc:
            commands.finish(command, error_code=exc.code, error_message=str(exc))
        except (InvalidPhone, ValueError) as exc:
            commands.finish(command, error_code="invalid_input", error_message=str(exc))
        except Exception as exc:
            log.exception("command %s failed", command.kind)
            commands.finish(
                command, error_code="runtime_error", error_message=f"{type(exc).__name__}: {exc}"
            )
        else:
            commands.finish(command, result=result)

    def _connected_transport(self, session_id: str) -> Transport | None:
        live = self.live.get(session_id)
        return live.transport if live is not None and live.connected else None

    def transport_for(self, command: RuntimeCommand) -> Transport:
        live = self.live.get(command.session_id or "")
        if live is None:
            raise TransportError(
                "The session is not running; start it first.", code="session_not_running"
            )
        return live.transport


def _host_name(host: SessionHost) -> str:
    """Where a session runs, as the API shows it."""
    pid = host.pid if isinstance(host, ProcessHost) else os.getpid()
    kind = "session process" if isinstance(host, ProcessHost) else "runtime"
    return f"{socket.gethostname()} {kind} pid {pid}"[:128]


# A host frozen or cut off in the middle of a transaction would keep its row locks (a
# session's lease row among them) for as long as its connection lives, and the host that
# takes its sessions over would wait on them for good. PostgreSQL ends such a transaction
# after this long: past the longest wait the runtime makes inside one (a 15 s pairing or
# logout), within the 30 s failover budget with the 15 s lease. And a statement of this
# host waits at most LOCK_WAIT_SECONDS for a lock, so the control loop (leases, the leader
# lease) never hangs on such a host; claims skip locked rows instead of waiting.
IDLE_IN_TRANSACTION_SECONDS = 20
LOCK_WAIT_SECONDS = 5


def _bound_idle_transactions(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        return

    @sa.event.listens_for(engine, "connect")
    def _limits(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECONDS}s'"
            )
            cursor.execute(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'")
        dbapi_connection.commit()

    engine.dispose()  # connections made before (migrations) go; new ones get the limit


def _count_statements(*_args: Any) -> None:
    RUNTIME_STATEMENTS.inc()


def main(app: Flask) -> None:
    """``kabar runtime``: run until SIGTERM/SIGINT."""
    _bound_idle_transactions(app)
    # Every engine of this process (the app's, the scheduler's job store).
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _count_statements)
    runtime = Runtime(app)
    signal.signal(signal.SIGTERM, runtime.request_stop)
    signal.signal(signal.SIGINT, runtime.request_stop)
    runtime.run()
