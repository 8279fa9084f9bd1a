"""What a request to run a workflow may say: the API and the dashboard load the same
schema."""

from __future__ import annotations

import marshmallow as ma


class StartSchema(ma.Schema):
    input = ma.fields.Dict(load_default=dict, metadata={"description": "trigger.input"})
    vars = ma.fields.Dict(load_default=None, metadata={"description": "Initial vars."})
    session = ma.fields.String(
        load_default=None,
        metadata={"description": "The run's session (id or label): the default sender."},
    )
    chat = ma.fields.String(
        load_default=None,
        metadata={"description": "The run's chat: where send and wait_for_reply go by default."},
    )
