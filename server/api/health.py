"""/api/v1/health (liveness) and /api/v1/ready (can this process serve?)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy.exc import SQLAlchemyError

from server import database
from server.api.base import Blueprint
from server.models import db
from server.runtime import heartbeat

blp = Blueprint("health", __name__, url_prefix="/api/v1", description="Liveness and readiness.")


class HealthSchema(ma.Schema):
    status = ma.fields.String()


class ReadySchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ready or not_ready"})
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Dict())


@blp.route("/health")
class Health(MethodView):
    @blp.public
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up. Does not touch the database."""
        return {"status": "ok"}


def _database_check() -> dict:
    try:
        current, head = database.current_revision(), database.head_revision()
    except SQLAlchemyError as exc:
        db.session.rollback()
        return {"ok": False, "error": f"database unreachable: {type(exc).__name__}"}
    if current != head:
        return {
            "ok": False,
            "error": f"database at revision {current}, code expects {head}; run `kabar init`",
            "revision": current,
        }
    return {"ok": True, "revision": current}


def _runtime_check() -> dict:
    state = heartbeat.state()
    if state.alive:
        return {"ok": True, "pid": state.pid, "beat_at": state.beat_at.isoformat()}
    return {
        "ok": False,
        "error": "the runtime process is not running; sessions are offline",
        "beat_at": state.beat_at.isoformat() if state.beat_at else None,
    }


@blp.route("/ready")
class Ready(MethodView):
    @blp.public
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, schema=ReadySchema, description="Not ready; see checks.")
    def get(self):
        """Ready: the database answers and is migrated, and the runtime beats."""
        checks = {"database": _database_check()}
        if checks["database"]["ok"]:
            checks["runtime"] = _runtime_check()
        ready = all(check["ok"] for check in checks.values())
        return {"status": "ready" if ready else "not_ready", "checks": checks}, (
            200 if ready else 503
        )
