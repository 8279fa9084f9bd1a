"""/api/v1/hooks/{workflow}: start a workflow from any HTTP client.

Authenticated by the workflow's own hook token (``X-Kabar-Token``), not by a user: the
caller is a form, a CRM or a script. The run goes as far as it can before the answer:
a ``respond`` node chooses the status and body (so a quick workflow answers with its
result); without one the answer is 202 with the run id.
"""

from __future__ import annotations

import json

from flask import Response, jsonify, request
from flask.views import MethodView

from server.api.base import Blueprint
from server.workflows import operations

blp = Blueprint("hooks", __name__, url_prefix="/api/v1/hooks",
                description="HTTP hooks: POST to start a workflow with a hook trigger.")

PASSED_HEADERS = ("content-type", "user-agent", "x-request-id")


@blp.route("/<workflow>")
class Hook(MethodView):
    @blp.doc(security=[{"hookToken": []}])  # after public: the workflow's own token
    @blp.public
    def post(self, workflow):
        """Start the workflow. trigger.body is the JSON body (or trigger.text the raw
        body), trigger.query the query string. 401 hook_unauthorized: unknown workflow,
        disabled, or a wrong token."""
        token = request.headers.get(operations.HOOK_HEADER)
        payload = {"body": request.get_json(silent=True),
                   "query": request.args.to_dict(flat=True),
                   "headers": {k: v for k, v in request.headers.items()
                               if k.lower() in PASSED_HEADERS}}
        if payload["body"] is None and request.data:
            payload["text"] = request.get_data(as_text=True)
        run, ctx = operations.run_hook(workflow, token, payload)
        if ctx.response is None:
            return jsonify({"run_id": run.id, "status": run.status}), 202
        # The context's run id: the committed row would be read again for its own.
        return _respond(ctx.response, ctx.run_id)


def _respond(answer: dict, run_id: str) -> Response:
    if answer.get("json") is not None:
        body, kind = json.dumps(answer["json"]), "application/json"
    else:
        body, kind = answer.get("body") or "", "text/plain; charset=utf-8"
    response = Response(body, status=answer["status"], content_type=kind)
    for key, value in (answer.get("headers") or {}).items():
        response.headers[key] = value
    response.headers["X-Kabar-Run"] = run_id
    return response
