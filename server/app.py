"""The application factory."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from nodes import templating
from server import config as settings
from server import inputs
from server.errors import KabarError, error_body
from server.extensions import db, jwt, limiter, migrate
from server.logs import configure_logging, init_request_ids

log = logging.getLogger(__name__)


def _blueprints() -> list:
    """Every API blueprint, registered in this order."""
    from server.api import (
        apikeys,
        auth,
        broadcasts,
        calls,
        chats,
        contacts,
        events,
        health,
        hooks,
        hosts,
        message_actions,
        messages,
        outbox,
        people,
        permission_groups,
        reply_watches,
        runs,
        sandbox,
        sessions,
        staff,
        tickets,
        users,
        webhooks,
        whatsapp_groups,
        workflows,
    )

    return [
        health.blp,
        auth.blp,
        users.blp,
        permission_groups.blp,
        apikeys.blp,
        sessions.blp,
        messages.blp,
        message_actions.blp,
        broadcasts.blp,
        outbox.blp,
        whatsapp_groups.blp,
        contacts.blp,
        calls.blp,
        chats.blp,
        sandbox.blp,
        webhooks.blp,
        events.blp,
        workflows.blp,
        runs.blp,
        reply_watches.blp,
        hooks.blp,
        tickets.blp,
        people.blp,
        staff.blp,
        hosts.blp,
    ]


def _secret_key(instance: Path) -> str:
    """A random key made once and kept in the instance folder, readable by its owner only."""
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class IdConverter(IntegerConverter):
    """``<int:...>`` in our URLs is a row id. One beyond a database INTEGER is a plain 404
    here; PostgreSQL would fail the lookup with "integer out of range" (a 500)."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then KABAR_* from the environment, then ``config``."""
    values = settings.load(config)
    instance = settings.instance_path(values)
    instance.mkdir(parents=True, exist_ok=True)
    if not values["SECRET_KEY"]:
        values["SECRET_KEY"] = _secret_key(instance)

    app = Flask("server", instance_path=str(instance), instance_relative_config=False)
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config.update(settings.flask_config(values, instance))
    app.config["KABAR"] = values
    configure_logging(values["LOG_LEVEL"], values["LOG_JSON"])
    templating.set_limits(
        seconds=values["TEMPLATE_TIMEOUT"],
        output=values["TEMPLATE_MAX_OUTPUT"],
        loop=values["TEMPLATE_MAX_LOOP"],
    )
    if values["TRUSTED_PROXIES"]:
        n = values["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))
    jwt.init_app(app)
    limiter.init_app(app)
    init_request_ids(app)
    inputs.init_app(app)  # body limit and text checks, before any other hook reads

    from server import docs_page, metrics, ui
    from server.api.base import SECURITY, Api

    api = Api(
        app,
        spec_kwargs={
            "info": {
                "description": (
                    "Kabar: a self-hosted WhatsApp gateway. Authenticate with "
                    "`Authorization: Bearer <access token or API key>` or `X-API-Key: <key>`."
                )
            }
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme(
        "apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    api.spec.components.security_scheme(
        "hookToken", {"type": "apiKey", "in": "header", "name": "X-Kabar-Token"}
    )
    api.spec.options["security"] = SECURITY
    for blueprint in _blueprints():
        api.register_blueprint(blueprint)
    app.extensions["kabar_api"] = api
    app.register_blueprint(docs_page.blp)
    from server.api import fonnte

    app.register_blueprint(fonnte.blp)  # fonnte's API shapes, at /fonnte (docs/fonnte.md)
    ui.init_app(app)  # the dashboard at /
    metrics.init_app(app)
    _register_error_handlers(app, api)
    _add_security_headers(app)
    return app


def _register_error_handlers(app: Flask, api) -> None:
    @app.errorhandler(KabarError)
    def _kabar_error(error: KabarError):
        db.session.rollback()  # a refused request leaves nothing half-done behind
        return (
            error_body(error.status, error.code, error.message, error.errors),
            error.status,
            error.headers,
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return api.handle_http_exception(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        return error_body(
            500,
            "internal_error",
            "Something went wrong on our side; the request id is in the logs.",
        ), 500


def _add_security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'",
        )
        return response
