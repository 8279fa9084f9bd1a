"""The studio's simulator pane (``ui/studio/_simulator.html``, included by the studio
page) and a page of its own around it: talk to a workflow as a contact, watch its run,
skip a wait, reset, test its hook. Every action is one ``server.workflows.simulator``
call; asked by the pane's script (``X-Kabar-Fragment``) an action answers the pane's new
state as JSON, asked by a plain form it goes back to the page.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request
from flask_babel import gettext as _

from server.ui import graph
from server.ui.base import UiBlueprint, back, wants_fragment
from server.workflows import operations, simulator, store

bp = UiBlueprint("simulator", __name__, url_prefix="/workflows")

PERMISSIONS = ("workflows:manage", "sessions:manage")  # it makes a sandbox session


@bp.route("/<workflow>/simulator")
@bp.requires(*PERMISSIONS)
def page(workflow):
    """The simulator beside the workflow's drawn graph (the studio shows it beside the
    editor instead)."""
    row = operations.get(workflow)
    doc = store.doc_of(row)
    return render_template("ui/studio/simulator_page.html", workflow=row, graph=graph.layout(doc))


def _state(row) -> dict[str, Any]:
    state = simulator.state(row)
    html = {
        "messages": render_template("ui/studio/_sim_messages.html", **state),
        "run": render_template("ui/studio/_sim_run.html", **state),
    }
    return {
        "workflow": state["workflow"],
        "version": state["version"],
        "ready": state["ready"],
        "session": state["session"],
        "run": state["run"],
        "html": html,
        "doc": store.doc_of(row),
    }


@bp.route("/<workflow>/simulator/state")
@bp.requires(*PERMISSIONS)
def state(workflow):
    return jsonify(_state(operations.get(workflow)))


def _answer(row, message: str, extra: dict[str, Any] | None = None):
    if wants_fragment():
        return jsonify({**_state(row), **(extra or {})})
    return back(message)


@bp.route("/<workflow>/simulator/start", methods=["POST"])
@bp.requires(*PERMISSIONS)
def start(workflow):
    row = operations.get(workflow)
    simulator.open_for(row)
    return _answer(row, _("The simulator runs %(name)s.", name=row.name))


@bp.route("/<workflow>/simulator/say", methods=["POST"])
@bp.requires(*PERMISSIONS)
def say(workflow):
    row = operations.get(workflow)
    simulator.say(row, request.form.get("text", ""))
    return _answer(row, _("Sent."))


@bp.route("/<workflow>/simulator/vote", methods=["POST"])
@bp.requires(*PERMISSIONS)
def vote(workflow):
    row = operations.get(workflow)
    simulator.vote(row, request.form.get("poll", ""), request.form.getlist("option"))
    return _answer(row, _("Voted."))


@bp.route("/<workflow>/simulator/reset", methods=["POST"])
@bp.requires(*PERMISSIONS)
def reset(workflow):
    row = operations.get(workflow)
    simulator.reset(row)
    return _answer(row, _("A new conversation: the simulator's runs were cancelled."))


@bp.route("/<workflow>/simulator/runs/<run_id>/skip-wait", methods=["POST"])
@bp.requires(*PERMISSIONS)
def skip_wait(workflow, run_id):
    row = operations.get(workflow)
    simulator.skip_wait(row, run_id)
    return _answer(row, _("The wait's time is up: the run took its timeout branch."))


@bp.route("/<workflow>/simulator/hook", methods=["POST"])
@bp.requires(*PERMISSIONS)
def hook(workflow):
    row = operations.get(workflow)
    answer = simulator.hook(row, request.form.get("body", ""))
    return _answer(
        row, _("The hook answered %(status)s.", status=answer["status"]), {"hook": answer}
    )
