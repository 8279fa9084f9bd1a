"""/api/v1/runtime/hosts: the runtime hosts, what each holds, and draining one."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server.api.base import Blueprint
from server.errors import NotFound
from server.runtime import leases, wakeup

blp = Blueprint(
    "hosts",
    __name__,
    url_prefix="/api/v1/runtime",
    description="Runtime hosts: the processes that hold WhatsApp sessions.",
)


class HostSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "hostname:pid:nonce"})
    hostname = ma.fields.String()
    pid = ma.fields.Integer()
    capacity = ma.fields.Integer(metadata={"description": "Most sessions it holds."})
    sessions = ma.fields.Integer(metadata={"description": "Sessions it holds now."})
    alive = ma.fields.Boolean(metadata={"description": "It beat within 15 s."})
    draining = ma.fields.Boolean(
        metadata={"description": "It is giving its sessions to the other hosts (for an upgrade)."}
    )
    leader = ma.fields.Boolean(
        metadata={"description": "It runs webhooks, workflows and schedules."}
    )
    started_at = ma.fields.DateTime()
    beat_at = ma.fields.DateTime()


@blp.route("/hosts")
class Hosts(MethodView):
    @blp.requires("runtime:manage")
    @blp.response(200, HostSchema(many=True))
    def get(self):
        """Every runtime host that has announced itself, live or not."""
        return leases.hosts()


@blp.route("/hosts/<string:host_id>/drain")
class Drain(MethodView):
    @blp.requires("runtime:manage")
    @blp.response(202, HostSchema)
    def post(self, host_id: str):
        """Drain a host: it gives every session it holds to the other hosts (within
        seconds) and takes no new ones; stop it then. `kabar runtime --drain` does the
        same for the host it runs on."""
        if not leases.drain(host_id):
            raise NotFound(
                f"No runtime host {host_id!r}; GET /api/v1/runtime/hosts lists them.",
                code="host_not_found",
            )
        wakeup.notify()
        return next(h for h in leases.hosts() if h.id == host_id)
