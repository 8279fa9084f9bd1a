"""The live event stream for the dashboard's pages: GET /api/v1/events behind the cookie
login (EventSource cannot send a Bearer token). Same filters, same code, same tenancy."""

from __future__ import annotations

from flask import request

from server.event_stream import FilterArgs, stream_response
from server.ui.base import UiBlueprint, load

bp = UiBlueprint("events", __name__)


@bp.route("/events")
@bp.requires("sessions:read")
def stream():
    return stream_response(load(FilterArgs(), request.args))
