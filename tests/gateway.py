"""A served Kabar driven from outside, over HTTP: a free port, JSON calls, waiting.

What the end-to-end tests (tests/e2e/), the n8n tests (tests/n8n/) and the benchmarks
(bench/) share, so each starts its processes its own way and talks to them the same way.
Standard library only: a benchmark imports it without the test dependencies.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
KABAR = [sys.executable, "-m", "server.cli"]  # the `kabar` command of this checkout
# What a gateway that is not (yet) listening answers: keep waiting.
NOT_LISTENING = (urllib.error.URLError, ConnectionError, TimeoutError)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """(status, JSON body) of one request; an error status is an answer, not an
    exception. A body that is not JSON comes back as ``{"raw": <its first 200 chars>}``."""
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _json(response.read())
    except urllib.error.HTTPError as error:
        with error:  # it holds the connection: close it, or a ResourceWarning follows
            return error.code, _json(error.read())


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {"raw": raw[:200].decode(errors="replace")}


def wait_for(
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    what: str | Callable[[], str] = "condition",
    interval: float = 0.2,
) -> T:
    """``predicate()``'s first true value; a gateway not listening yet counts as false.
    ``what`` may be a function: a diagnosis made only when the wait failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except NOT_LISTENING:
            value = None
        if value:
            return value
        time.sleep(interval)
    what = what() if callable(what) else what
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Gateway:
    """The REST API at ``base`` (``http://127.0.0.1:PORT``), as ``token``'s holder."""

    def __init__(self, base: str, token: str | None = None, *, timeout: float = 10.0):
        self.base, self.token, self.timeout = base, token, timeout

    def call(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return request_json(
            method,
            self.base + path,
            body,
            headers=headers,
            timeout=self.timeout if timeout is None else timeout,
        )

    def login(self, username: str, password: str) -> str:
        status, tokens = self.call(
            "POST", "/api/v1/auth/login", {"username": username, "password": password}
        )
        assert status == 200, tokens
        self.token = tokens["access_token"]
        return self.token

    @staticmethod
    def wait(
        predicate: Callable[[], T | None],
        timeout: float = 30.0,
        what: str = "condition",
        interval: float = 0.2,
    ) -> T:
        return wait_for(predicate, timeout=timeout, what=what, interval=interval)
