"""`kabar run`: serve the web app with gunicorn and keep the runtime process alive.

The runtime is a child process because neonize can abort its whole process (a Go panic):
when it dies, the web keeps answering (and reports the runtime down) while this
supervisor releases the dead runtime's lease and starts a new one, with backoff if it
keeps crashing. SIGTERM/SIGINT stop both children gracefully.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time

from flask import Flask

from server.runtime import heartbeat

log = logging.getLogger(__name__)

MIN_BACKOFF, MAX_BACKOFF = 1.0, 30.0
# A runtime that lived this long is healthy: its next crash starts the backoff afresh.
HEALTHY_AFTER = 60.0


def _spawn_runtime(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server.cli", "runtime"], env=env)


def supervise(app: Flask, web_command: list[str], env: dict[str, str]) -> int:
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    web = subprocess.Popen(web_command, env=env)
    runtime = _spawn_runtime(env) if app.config["KABAR"]["RUNTIME"] else None
    runtime_started = time.monotonic()
    backoff = MIN_BACKOFF
    restart_at: float | None = None
    try:
        while not stopping:
            if web.poll() is not None:
                log.error("the web server exited with %s; stopping", web.returncode)
                return web.returncode or 1
            if runtime is not None and runtime.poll() is not None:
                lived = time.monotonic() - runtime_started
                backoff = MIN_BACKOFF if lived > HEALTHY_AFTER else min(backoff * 2, MAX_BACKOFF)
                log.error(
                    "the runtime exited with %s after %.0fs; restarting in %.0fs",
                    runtime.returncode,
                    lived,
                    backoff,
                )
                with app.app_context():
                    heartbeat.release_pid(runtime.pid)
                restart_at = time.monotonic() + backoff
                runtime = None
            if restart_at is not None and time.monotonic() >= restart_at:
                runtime, runtime_started, restart_at = _spawn_runtime(env), time.monotonic(), None
            time.sleep(0.2)
        return 0
    finally:
        for child in (runtime, web):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in (runtime, web):
            if child is not None:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
