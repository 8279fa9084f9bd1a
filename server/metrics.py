"""Prometheus metrics at /metrics (permission metrics:read; Prometheus can send an API key
as a bearer token). Works under several gunicorn workers when PROMETHEUS_MULTIPROC_DIR is
set, which `kabar run` does."""

from __future__ import annotations

import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from server.auth.guard import require

REQUESTS = Counter(
    "kabar_http_requests_total", "HTTP requests answered.", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "kabar_http_request_seconds", "Time to answer an HTTP request.", ["method", "endpoint"]
)

SESSION_PROCESS_EXITS = Counter(
    "kabar_session_process_exits_total",
    "Session host processes that ended by themselves (crash: restarted with backoff; "
    "recycle: the transport asked for a fresh process).",
    ["reason"],
)

RUNTIME_STATEMENTS = Counter(
    "kabar_runtime_statements_total",
    "SQL statements the runtime process sent to the database (idle, this stays at a "
    "constant rate whatever the number of sessions: nothing polls per session).",
)

blp = Blueprint("metrics", __name__)


@blp.route("/metrics")
@require("metrics:read")
def metrics() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    # CONTENT_TYPE_LATEST carries its charset; as a mimetype Flask would add another.
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
        return response
