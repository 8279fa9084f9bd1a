"""Logging: a request id on every line, plain or JSON output (KABAR_LOG_JSON)."""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(g, "request_id", "-") if has_request_context() else "-"
        return True


def configure_logging(level: str, json_lines: bool) -> None:
    """Configure the root logger once per process (idempotent across app instances)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_kabar", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._kabar = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    if json_lines:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    root.setLevel(level.upper())


def init_request_ids(app: Flask) -> None:
    """Take a sane X-Request-ID from the caller or make one; echo it on every response."""

    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = getattr(g, "request_id", "")
        return response
