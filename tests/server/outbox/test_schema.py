"""What a send request may say: the plain-text fast path loads exactly as the schema."""

from __future__ import annotations

import itertools
import random

import marshmallow as ma

from server.outbox.schema import SendSpec, load_plain_text

VALUES = {
    "to": ["628123456789", "0812-3456-789", "", " ", "Arisan RT", 628123456789, None, ["x"]],
    "text": ["Halo", " Halo ", "", " ", "\n", "x" * 65536, "x" * 65537, 5, None, True],
    "type": ["text", "image", "TEXT", "fax", None, 1],
    "priority": ["high", "normal", "bulk", "urgent", None, ""],
    "link_preview": [True, False],
    "send_at": ["2030-01-01T00:00:00+07:00"],
    "mentions": [["628111"]],
    "extra": ["unknown field"],
}


def _full(spec):
    try:
        return SendSpec().load(spec)
    except ma.ValidationError as exc:
        return ("refused", exc.messages)


def test_every_plain_text_shape_loads_as_the_schema_loads_it():
    """Each combination of the fast path's fields (present or absent, good or bad values):
    where it answers, the schema answers the same; where it declines, the schema runs."""
    fields = ["to", "text", "type", "priority"]
    answered = 0
    for present in itertools.product([False, True], repeat=len(fields)):
        names = [name for name, on in zip(fields, present, strict=True) if on]
        for values in itertools.product(*(VALUES[name] for name in names)):
            spec = dict(zip(names, values, strict=True))
            fast = load_plain_text(spec)
            if fast is not None:
                answered += 1
                assert fast == _full(spec), spec
    assert answered >= 60  # the plain sends do take it


def test_anything_beyond_plain_text_goes_through_the_schema():
    rng = random.Random(15)
    for _ in range(2000):
        names = rng.sample(sorted(VALUES), rng.randint(1, len(VALUES)))
        spec = {name: rng.choice(VALUES[name]) for name in names}
        fast = load_plain_text(spec)
        if set(spec) - {"to", "text", "type", "priority"}:
            assert fast is None, spec
        elif fast is not None:
            assert fast == _full(spec), spec
    assert load_plain_text(["not", "a", "dict"]) is None
