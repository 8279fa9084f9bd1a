"""/api/v1/api-keys: machine credentials, owned by the user who made them."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.auth import apikeys, current_principal, get_owned, scoped
from server.auth.schemas import ApiKeySchema
from server.models import ApiKey

blp = Blueprint(
    "api_keys",
    __name__,
    url_prefix="/api/v1/api-keys",
    description="API keys for scripts and servers. The key is shown once.",
)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = ma.fields.String(metadata={"description": "The key itself. Shown only this once."})


@blp.route("")
class ApiKeys(MethodView):
    @blp.requires()
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(ApiKeySchema))
    def get(self, args):
        """List my API keys (admins: everyone's). The keys themselves are never shown.
        Called with an API key that does not hold users:manage: that key only."""
        principal = current_principal()
        query = scoped(ApiKey)
        if not apikeys.may_manage_keys(principal):
            query = query.where(ApiKey.id == principal.api_key.id)
        return paginate(query, ApiKey.id, cursor=args["cursor"], limit=args["limit"])

    @blp.requires()
    @blp.arguments(ApiKeySchema)
    @blp.response(201, ApiKeyCreatedSchema)
    def post(self, body):
        """Create an API key. Copy the key from the answer: it is not stored. An API key
        may create keys only if it holds users:manage."""
        apikeys.check_may_manage(current_principal())
        row, key = apikeys.create(
            current_principal(),
            name=body["name"],
            permissions=body["permissions"],
            expires_at=body["expires_at"],
            session_id=body["session_id"],
        )
        row.key = key  # transient: dumped in this answer only, never stored
        return row


@blp.route("/<int:key_id>")
class ApiKeyById(MethodView):
    @blp.requires()
    @blp.response(200, ApiKeySchema)
    def get(self, key_id):
        """One API key (without the key)."""
        row = get_owned(ApiKey, key_id, what="api key")
        apikeys.check_may_manage(current_principal(), row)
        return row

    @blp.requires()
    @blp.response(204)
    def delete(self, key_id):
        """Revoke an API key; it stops working at once. An API key that does not hold
        users:manage may revoke only itself."""
        row = get_owned(ApiKey, key_id, what="api key")
        apikeys.check_may_manage(current_principal(), row)
        apikeys.revoke(row)
