"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that verifies every
delivery with the standardwebhooks library, records it, and answers as told."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from server.webhooks import delivery

Answer = Callable[[dict], tuple[int, Any]]  # payload -> (status, body: bytes | dict)


class Receiver:
    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.requests: list[dict] = []  # every verified request, with the status answered
        self.errors: list[str] = []  # requests that failed verification
        self.answer: Answer = lambda _payload: (200, b"ok")
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def register(self, response) -> dict:
        """Remember the secret of a webhook just created (the API's answer)."""
        assert response.status_code == 201, response.json
        self.secrets.append(response.json["secret"])
        return response.json

    def delivered(self, event_type: str | None = None) -> list[dict]:
        """Requests answered 2xx, in arrival order (optionally of one event type)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if 200 <= r["status"] < 300
                and (event_type is None or r["json"]["type"] == event_type)
            ]

    def attempts(self) -> int:
        with self.lock:
            return len(self.requests)

    def _verify(self, body: bytes, headers: dict[str, str]) -> Any:
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
        raise WebhookVerificationError("no secret verifies this delivery")

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                try:
                    payload = receiver._verify(body, headers)
                except WebhookVerificationError as exc:
                    with receiver.lock:
                        receiver.errors.append(f"{exc}: {headers} {body[:200]!r}")
                    self._reply(400, b"bad signature")
                    return
                status, answer = receiver.answer(payload)
                with receiver.lock:
                    receiver.requests.append(
                        {"json": payload, "headers": headers, "body": body, "status": status}
                    )
                self._reply(status, answer)

            def _reply(self, status: int, answer: Any) -> None:
                data = json.dumps(answer).encode() if isinstance(answer, (dict, list)) else answer
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args) -> None:
                pass

        return Handler


def running_receiver(app, monkeypatch) -> Iterator[Receiver]:
    """A receiver the gateway may reach (127.0.0.1 allowed), with fast retries."""
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", ["127.0.0.1/32"])
    monkeypatch.setattr(delivery, "BACKOFF_BASE", 0.05)
    monkeypatch.setattr(delivery, "BACKOFF_CAP", 0.2)
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        assert not receiver.errors, f"deliveries that failed verification: {receiver.errors}"
