"""/api/v1/sessions/{id}/calls: act on incoming calls (``call.received`` events).

Kabar cannot answer a call; it can decline one, so the caller sees it rejected rather
than ringing out (an auto-reply workflow on ``call.received`` can then send a message).
"""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server import sessions
from server.api.base import Blueprint
from server.runtime import live

blp = Blueprint(
    "calls",
    __name__,
    url_prefix="/api/v1/sessions",
    description="Incoming calls: reject a ringing call.",
)


class RejectCallSchema(ma.Schema):
    caller = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 128),
        metadata={
            "description": "Who is calling: the `caller.jid` of the call.received event (a "
            "phone number as people type it works too)."
        },
    )


class RejectedCallSchema(ma.Schema):
    call_id = ma.fields.String()
    rejected = ma.fields.Boolean()


def reject(session, call_id: str, caller: str) -> dict:
    live.reject_call(session.id, call_id=call_id, caller=caller)
    return {"call_id": call_id, "rejected": True}


@blp.route("/<string:session_id>/calls/<string:call_id>/reject")
class RejectCall(MethodView):
    @blp.requires("messages:send")
    @blp.arguments(RejectCallSchema)
    @blp.response(200, RejectedCallSchema)
    def post(self, body, session_id, call_id):
        """Decline a ringing call (its `call_id` from the call.received event).

        409 `call_not_found` when no such call is ringing (it ended, or was rejected
        already); 503 while the session is not connected."""
        return reject(sessions.get(session_id), call_id, body["caller"])
