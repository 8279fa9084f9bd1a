"""/api/v1/outbox: every outgoing message across my sessions, for monitoring."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server import fields, outbox, sessions
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.api.messages import OutgoingSchema
from server.models import OUTBOX_STATUSES, OutboxMessage

blp = Blueprint(
    "outbox",
    __name__,
    url_prefix="/api/v1/outbox",
    description="The outbox across sessions: what waits, what failed, and why.",
)


class OutboxArgs(PageArgs):
    status = ma.fields.String(validate=ma.validate.OneOf(OUTBOX_STATUSES))
    session = ma.fields.String(metadata={"description": "Only this session."})
    since = fields.AwareDateTime(metadata={"description": "Created at or after."})
    until = fields.AwareDateTime(metadata={"description": "Created before."})
    broadcast = ma.fields.String()


@blp.route("")
class Outbox(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(OutboxArgs, location="query")
    @blp.response(200, page_schema(OutgoingSchema))
    def get(self, args):
        """Outgoing messages of the sessions I can see, oldest first."""
        query = outbox.listing(
            status=args.get("status"),
            since=args.get("since"),
            until=args.get("until"),
            broadcast=args.get("broadcast"),
            session=sessions.get(args["session"]) if args.get("session") else None,
        )
        return paginate(query, OutboxMessage.seq, cursor=args["cursor"], limit=args["limit"])
