"""/api/v1/hooks/{workflow}: start a workflow from any HTTP client.

Authenticated by the workflow's own hook token (``X-Kabar-Token``), not by a user: the
caller is a form, a CRM or a script. The run goes as far as it can before the answer:
a ``respond`` node chooses the status and body (so a quick workflow answers with its
result); without one the answer is 202 with the run id.
"""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView

from server.api.base import Blueprint
from server.workflows import operations

blp = Blueprint(
    "hooks",
    __name__,
    url_prefix="/api/v1/hooks",
    description="HTTP hooks: POST to start a workflow with a hook trigger.",
)


@blp.route("/<workflow>")
class Hook(MethodView):
    @blp.doc(security=[{"hookToken": []}])  # after public: the workflow's own token
    @blp.public
    def post(self, workflow):
        """Start the workflow. trigger.body is the JSON body (or trigger.text the raw
        body), trigger.query the query string. 401 hook_unauthorized: unknown workflow,
        disabled, or a wrong token."""
        token = request.headers.get(operations.HOOK_HEADER)
        payload = operations.hook_request(
            body=request.get_json(silent=True),
            text=request.get_data(as_text=True) if request.data else "",
            query=request.args.to_dict(flat=True),
            headers=dict(request.headers.items()),
        )
        run, ctx = operations.run_hook(workflow, token, payload)
        answer = operations.hook_answer(run, ctx)
        response = Response(
            answer["body"], status=answer["status"], content_type=answer["content_type"]
        )
        for key, value in answer["headers"].items():
            response.headers[key] = value
        return response
