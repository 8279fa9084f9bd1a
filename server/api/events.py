"""/api/v1/events: the event log, live (Server-Sent Events) or as pages of JSON; the
stream itself is server/event_stream.py, which the dashboard answers with too."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server import event_stream
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.event_stream import FilterArgs, stream_response
from server.events import CATALOGUE_VERSION
from server.models import StoredEvent

blp = Blueprint(
    "events",
    __name__,
    url_prefix="/api/v1/events",
    description="The event log: a live stream (SSE) and pages of JSON.",
)


class LogArgs(FilterArgs, PageArgs):
    pass


class EventSchema(ma.Schema):
    seq = ma.fields.Integer(metadata={"description": "Position in the log (the SSE id)."})
    id = ma.fields.String(metadata={"description": "The event's id (webhook-id)."})
    type = ma.fields.String()
    version = ma.fields.Function(lambda _row: CATALOGUE_VERSION)
    timestamp = ma.fields.DateTime(attribute="created_at")
    session = ma.fields.Dict(allow_none=True)
    data = ma.fields.Dict()


@blp.route("")
class Stream(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(FilterArgs, location="query")
    @blp.doc(
        responses={
            "200": {
                "description": "text/event-stream: `id: <seq>`, `event: <type>`, "
                "`data: <envelope>`; a keep-alive comment every 15 s.",
                "content": {
                    "text/event-stream": {
                        "schema": {
                            "type": "string",
                            "format": "event-stream",
                            "description": "Server-Sent Events frames (not JSON); "
                            "each data line is one event envelope "
                            "as GET /api/v1/events/log items show it.",
                        },
                        "example": 'id: 42\nevent: message.received\ndata: {"id": "…", "type": '
                        '"message.received", "data": {…}}\n\n',
                    }
                },
            }
        }
    )
    def get(self, args):
        """Live events of my sessions (admins: all) as Server-Sent Events. Resume with
        the Last-Event-ID header (or ?after=); without either, only new events come."""
        return stream_response(args)


@blp.route("/log")
class Log(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(LogArgs, location="query")
    @blp.response(200, page_schema(EventSchema))
    def get(self, args):
        """The same events as pages of JSON, oldest first (for scripts without SSE)."""
        return paginate(
            event_stream.visible(args), StoredEvent.seq, cursor=args["cursor"], limit=args["limit"]
        )
