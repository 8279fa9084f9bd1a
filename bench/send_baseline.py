"""The baseline of bench/send.py: Kabar's own app (``create_app``: its request checks,
security headers, metrics and database session) with one route more that does one INSERT
and one COMMIT and nothing else, served by gunicorn as ``kabar run`` serves Kabar. It is
what this stack can do at most for a request that stores something."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, jsonify, request

from server import create_app
from server.models import db

TABLE = "bench_baseline"


def app() -> Flask:
    application = create_app()

    @application.post("/bench/baseline")
    def baseline():
        db.session.execute(
            sa.text(f"INSERT INTO {TABLE} (body) VALUES (:body)"),
            {"body": request.get_data(as_text=True)},
        )
        db.session.commit()
        return jsonify({"stored": True}), 202

    return application
