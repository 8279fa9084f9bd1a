"""/api/v1/reply-watches: "watch this chat for its next reply and POST it to this URL"
(what n8n's send-and-wait-for-reply uses; see server/workflows/watches.py)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server.api.base import Blueprint
from server.auth import current_principal
from server.workflows import watches

blp = Blueprint(
    "reply_watches",
    __name__,
    url_prefix="/api/v1/reply-watches",
    description="Reply watches: wait for a chat's next reply (optionally after a "
    "prompt) and POST the outcome, signed, to a callback URL.",
)

_SECRET = r"^whsec_[A-Za-z0-9+/=]{24,120}$"


class ReplyWatchCreateSchema(ma.Schema):
    session_id = ma.fields.String(
        required=True, metadata={"description": "The session that asks and whose chat is watched."}
    )
    chat = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 128),
        metadata={
            "description": "The chat: a phone number as typed (0812…, +62 812…) or a JID "
            "(…@s.whatsapp.net, a group's …@g.us)."
        },
    )
    callback_url = ma.fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=ma.validate.Length(1, 2048),
        metadata={
            "description": "Where the outcome is POSTed (n8n: the execution's resume URL). It "
            "must pass the SSRF guard; allow a private n8n with "
            "KABAR_WEBHOOK_ALLOW."
        },
    )
    timeout = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(1, 30 * 86400),
        metadata={"description": "Seconds to wait for a reply (again after each reprompt)."},
    )
    prompt = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(1, 65536),
        metadata={"description": "Sent first: the question."},
    )
    pattern = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(1, 1024),
        metadata={
            "description": "A regular expression the whole "
            "trimmed reply must match, such as ^[1-5]$."
        },
    )
    reprompt = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(1, 65536),
        metadata={"description": "Sent after a reply that does not match, before waiting again."},
    )
    max_attempts = ma.fields.Integer(
        load_default=3,
        validate=ma.validate.Range(1, 20),
        metadata={"description": "Replies that do not match before the outcome is invalid."},
    )
    secret = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(_SECRET),
        metadata={
            "description": "The whsec_… secret the callback is "
            "signed with (default: a new one, in the answer)."
        },
    )
    idempotency_key = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(1, 200),
        metadata={"description": "The same key again (from the same caller) gives the same watch."},
    )

    @ma.validates("pattern")
    def _compiles(self, value, **_kwargs):
        import re

        try:
            re.compile(value or "")
        except re.error as exc:
            raise ma.ValidationError(f"Not a valid regular expression: {exc}.") from None


class CallbackSchema(ma.Schema):
    delivery_id = ma.fields.Integer()
    status = ma.fields.String(
        metadata={"description": "pending, delivering, delivered, failed (retrying), dead."}
    )
    attempts = ma.fields.Integer()
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)


class ReplyWatchSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The watch's id: its run's id."})
    session_id = ma.fields.String()
    session_label = ma.fields.String(allow_none=True)
    chat = ma.fields.String(metadata={"description": "The watched chat's JID."})
    status = ma.fields.String(
        metadata={
            "description": "waiting, completed, failed (the prompt could not be sent), cancelled."
        }
    )
    outcome = ma.fields.String(
        allow_none=True, metadata={"description": "reply, timeout or invalid, once completed."}
    )
    result = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "What the callback carries as data.result: outcome, text, "
            "attempts, groups, named, message."
        },
    )
    error = ma.fields.String(allow_none=True)
    wait_until = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When the current wait times out."}
    )
    created_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)
    callback_url = ma.fields.String()
    webhook_id = ma.fields.Integer(
        metadata={
            "description": "The one-shot webhook endpoint that POSTs the outcome: see "
            "/api/v1/webhooks/{id}/deliveries for every attempt."
        }
    )
    callback = ma.fields.Nested(
        CallbackSchema,
        allow_none=True,
        metadata={"description": "The callback's delivery, once the watch has ended."},
    )


class ReplyWatchCreatedSchema(ReplyWatchSchema):
    secret = ma.fields.String(
        metadata={
            "description": "whsec_…: verify the callback's signature with it (Standard "
            "Webhooks). Shown at creation only."
        }
    )


@blp.route("")
class ReplyWatches(MethodView):
    @blp.requires("messages:send", "webhooks:manage")
    @blp.arguments(ReplyWatchCreateSchema)
    @blp.response(201, ReplyWatchCreatedSchema)
    @blp.alt_response(
        200,
        schema=ReplyWatchCreatedSchema,
        description="The watch made earlier with this idempotency key.",
    )
    def post(self, body):
        """Send the prompt (if any), wait for the chat's next reply and POST the outcome to
        callback_url: {"type": "workflow.completed", "data": {"result": {"outcome":
        "reply" | "timeout" | "invalid", "text", ...}}}, signed like every webhook. A
        reply that resumes a watch is that watch's alone (no workflow trigger sees it)."""
        row, endpoint, created = watches.create(current_principal(), **body)
        return (
            {**watches.describe(row, endpoint), "secret": endpoint.secret},
            201 if created else 200,
        )


@blp.route("/<watch_id>")
class ReplyWatchById(MethodView):
    @blp.requires("messages:send")
    @blp.response(200, ReplyWatchSchema)
    def get(self, watch_id):
        """Where a watch stands, with its outcome and its callback's delivery."""
        return watches.describe(*watches.get(watch_id))

    @blp.requires("messages:send")
    @blp.response(200, ReplyWatchSchema)
    def delete(self, watch_id):
        """Stop watching (409 run_not_open if it has ended): nothing is POSTed."""
        row, endpoint = watches.get(watch_id)
        watches.cancel(row, endpoint, by=current_principal().user.username)
        return watches.describe(row, endpoint)
