"""``send`` takes exactly the send spec of docs/messaging.md: the node and the outbox
(server/outbox/schema.py) both extend nodes/message.py; this keeps what each declares for
itself (its field types and defaults) in step."""

from __future__ import annotations

import marshmallow as ma
import pytest

from nodes.builtin.send import KINDS, MEDIA_KINDS, SPEC_FIELDS, SendParams
from server.outbox import schema as outbox


def test_every_field_of_the_send_spec_is_a_parameter():
    spec_fields = set(outbox.SendSpec().fields) - {"to"}
    assert spec_fields == set(SPEC_FIELDS)
    params = SendParams().fields
    for name in (*SPEC_FIELDS, "to"):
        server_field, node_field = outbox.SendSpec().fields[name], params[name]
        # The same kind of field; either may be a subclass of the other (the node's Text
        # is a String; the server's AwareDateTime refuses year 1).
        assert isinstance(node_field, type(server_field)) or isinstance(
            server_field, type(node_field)
        ), name


def test_the_nested_parts_match():
    assert KINDS == outbox.KINDS and MEDIA_KINDS == outbox.MEDIA_KINDS
    from server.whatsapp.neonize import media as neonize_media

    assert neonize_media.MEDIA_KINDS == MEDIA_KINDS
    for part in ("media", "location", "poll"):
        server = outbox.SendSpec().fields[part].schema.fields
        node = SendParams().fields[part].schema.fields
        assert set(server) == set(node), part
    server = outbox.SendSpec().fields["contacts"].inner.schema.fields
    assert set(server) == set(SendParams().fields["contacts"].inner.schema.fields)


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        (
            {"type": "poll", "poll": {"question": "?", "options": ["a", "a"]}},
            {"poll": ["Poll options must differ from each other."]},
        ),
        (
            {"text": "x", "send_at": "2025-01-02T00:00:00Z", "expires_at": "2025-01-01T00:00:00Z"},
            {"expires_at": ["Must be after send_at."]},
        ),
        (
            {"text": "x", "to": "1", "lines": "1|a"},
            {"to": ["A broadcast goes to its recipients or lines; remove to."]},
        ),
        (
            {"text": "x", "lines": "1|a", "recipients": [{"to": "1"}]},
            {"lines": ["Give recipients or lines, not both."]},
        ),
        (
            {"type": "image", "media": {"url": "https://x.org/a.png", "sha256": "a" * 64}},
            {"media": {"_schema": ["Give exactly one of url, base64 or sha256."]}},
        ),
        (
            {"type": "contacts", "contacts": [{"name": "Budi"}]},
            {"contacts": {0: {"_schema": ["Give name and phone, or a vcard."]}}},
        ),
    ],
)
def test_the_spec_rules_hold(params, errors):
    with pytest.raises(ma.ValidationError) as raised:
        SendParams().load(params)
    assert raised.value.normalized_messages() == errors
