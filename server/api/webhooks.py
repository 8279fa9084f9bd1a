"""/api/v1/webhooks: endpoints that receive signed events, their deliveries, replays."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server import fields
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.auth import current_principal
from server.models import DELIVERY_STATUSES, WebhookDelivery, WebhookEndpoint
from server.webhooks import endpoints
from server.webhooks.schemas import WebhookSchema, WebhookUpdateSchema

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Webhooks: events POSTed to your URL, signed (Standard Webhooks), "
    "retried, in order per chat.",
)


class WebhookSecretSchema(WebhookSchema):
    secret = ma.fields.String(
        dump_only=True,
        metadata={"description": "whsec_…: verify signatures with it. Shown this once only."},
    )


class WebhookListArgs(PageArgs):
    session = ma.fields.String(metadata={"description": "Only this session's endpoints."})


class SecretSchema(ma.Schema):
    secret = ma.fields.String(metadata={"description": "The new secret, shown this once."})


class PingSchema(ma.Schema):
    ok = ma.fields.Boolean(metadata={"description": "The receiver answered 2xx."})
    status_code = ma.fields.Integer(allow_none=True)
    latency_ms = ma.fields.Integer()
    response = ma.fields.String(metadata={"description": "The answer's first 1 KB."})
    error = ma.fields.String(allow_none=True)
    event_id = ma.fields.String(metadata={"description": "The webhook-id that was sent."})


class AttemptSchema(ma.Schema):
    attempt = ma.fields.Integer()
    status_code = ma.fields.Integer(allow_none=True)
    latency_ms = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)
    response = ma.fields.String(allow_none=True)
    at = ma.fields.DateTime()


class DeliverySchema(ma.Schema):
    id = ma.fields.Integer()
    endpoint_id = ma.fields.Integer()
    event_id = ma.fields.Function(lambda d: d.event.id)
    event_type = ma.fields.Function(lambda d: d.event.type)
    event_seq = ma.fields.Integer()
    ordering_key = ma.fields.String()
    status = ma.fields.String(metadata={"description": ", ".join(DELIVERY_STATUSES)})
    attempts = ma.fields.Integer()
    next_at = ma.fields.DateTime()
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    latency_ms = ma.fields.Integer(allow_none=True)
    replay_of = ma.fields.Integer(allow_none=True)
    actions_result = ma.fields.List(
        ma.fields.Dict(),
        allow_none=True,
        metadata={"description": "One result per response action the receiver asked for."},
    )
    created_at = ma.fields.DateTime()
    delivered_at = ma.fields.DateTime(allow_none=True)
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptSchema), data_key="attempt_log")


class DeliveryArgs(PageArgs):
    status = ma.fields.String(validate=ma.validate.OneOf(DELIVERY_STATUSES))
    order = ma.fields.String(
        load_default="oldest",
        validate=ma.validate.OneOf(["oldest", "newest"]),
        metadata={"description": "oldest (default) or newest first."},
    )


class ReplaySchema(ma.Schema):
    since = fields.AwareDateTime(
        load_default=None,
        metadata={
            "description": "Deliveries made since (ISO 8601 with a zone; default: the max age)."
        },
    )
    status = ma.fields.String(
        load_default="all", validate=ma.validate.OneOf(["failed", "dead", "all"])
    )


class ReplayedSchema(ma.Schema):
    replayed = ma.fields.Integer(metadata={"description": "New deliveries queued."})


@blp.route("")
class Webhooks(MethodView):
    @blp.requires("webhooks:manage")
    @blp.arguments(WebhookListArgs, location="query")
    @blp.response(200, page_schema(WebhookSchema))
    def get(self, args):
        """My webhook endpoints (admins: everyone's). The secret is never shown here."""
        return paginate(
            endpoints.visible(args.get("session")),
            WebhookEndpoint.id,
            cursor=args["cursor"],
            limit=args["limit"],
        )

    @blp.requires("webhooks:manage")
    @blp.arguments(WebhookSchema)
    @blp.response(201, WebhookSecretSchema)
    def post(self, body):
        """Create an endpoint. The answer holds its secret: keep it, it is not shown again.
        The URL must be one the gateway may reach (422 unsafe_url otherwise)."""
        endpoint = endpoints.create(current_principal(), **body)
        return endpoint


@blp.route("/<int:webhook_id>")
class WebhookById(MethodView):
    @blp.requires("webhooks:manage")
    @blp.response(200, WebhookSchema)
    def get(self, webhook_id):
        """One endpoint (without its secret)."""
        return endpoints.get(webhook_id)

    @blp.requires("webhooks:manage")
    @blp.arguments(WebhookUpdateSchema)
    @blp.response(200, WebhookSchema)
    def patch(self, body, webhook_id):
        """Change the URL, events, headers or name; enable, disable or resume it."""
        return endpoints.update(endpoints.get(webhook_id), **body)

    @blp.requires("webhooks:manage")
    @blp.response(204)
    def delete(self, webhook_id):
        """Delete the endpoint and its delivery history."""
        endpoints.delete(endpoints.get(webhook_id))


@blp.route("/<int:webhook_id>/rotate-secret")
class RotateSecret(MethodView):
    @blp.requires("webhooks:manage")
    @blp.response(200, SecretSchema)
    def post(self, webhook_id):
        """Replace the secret at once; the new one is shown this once."""
        return {"secret": endpoints.rotate_secret(endpoints.get(webhook_id))}


@blp.route("/<int:webhook_id>/test")
class Test(MethodView):
    @blp.requires("webhooks:manage")
    @blp.response(200, PingSchema)
    def post(self, webhook_id):
        """POST a signed webhook.ping now and report the receiver's answer."""
        return endpoints.ping(endpoints.get(webhook_id))


@blp.route("/<int:webhook_id>/deliveries")
class Deliveries(MethodView):
    @blp.requires("webhooks:manage")
    @blp.arguments(DeliveryArgs, location="query")
    @blp.response(200, page_schema(DeliverySchema))
    def get(self, args, webhook_id):
        """The endpoint's deliveries, each with its attempts (?order=newest for a log)."""
        endpoint = endpoints.get(webhook_id)
        return paginate(
            endpoints.deliveries_of(endpoint, args.get("status")),
            WebhookDelivery.id,
            cursor=args["cursor"],
            limit=args["limit"],
            descending=args["order"] == "newest",
        )


@blp.route("/<int:webhook_id>/replay")
class ReplayEndpoint(MethodView):
    @blp.requires("webhooks:manage")
    @blp.arguments(ReplaySchema)
    @blp.response(202, ReplayedSchema)
    def post(self, body, webhook_id):
        """Queue again every failed and/or dead delivery made since a time; with
        status all (the default), also the events since then that were never queued
        for this endpoint."""
        endpoint = endpoints.get(webhook_id)
        return {
            "replayed": endpoints.replay_since(endpoint, since=body["since"], status=body["status"])
        }


@blp.route("/deliveries/<int:delivery_id>")
class DeliveryById(MethodView):
    @blp.requires("webhooks:manage")
    @blp.response(200, DeliverySchema)
    def get(self, delivery_id):
        """One delivery with its attempts and the result of the receiver's actions."""
        return endpoints.get_delivery(delivery_id)


@blp.route("/deliveries/<int:delivery_id>/replay")
class ReplayDelivery(MethodView):
    @blp.requires("webhooks:manage")
    @blp.response(202, DeliverySchema)
    def post(self, delivery_id):
        """Send one delivery's event again, as a new delivery."""
        return endpoints.replay(endpoints.get_delivery(delivery_id))
