"""Request fields whose every accepted value the code and both databases can handle.

A plain ``Date`` takes 0001-01-01 and 9999-12-31, and a plain ``Integer`` any size; the
first day minus a time zone, the last day plus one, or an integer past a PostgreSQL
``INTEGER`` then fail deep inside a query as a 500. These fields refuse such values with
the field's 422 instead, so a view never sees one.
"""

from __future__ import annotations

from datetime import UTC, date

import marshmallow as ma

# Far enough apart for anything a gateway schedules or filters by, and far enough from
# Python's and the databases' limits that a day or a time zone more never overflows.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)
ROW_ID_MAX = 2**31 - 1  # PostgreSQL INTEGER, what our ids are
_RANGE = f"from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"


class Date(ma.fields.Date):
    """A day between 1900-01-01 and 9998-12-31."""

    def _deserialize(self, value, attr, data, **kwargs):
        day = super()._deserialize(value, attr, data, **kwargs)
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ma.ValidationError(f"Give a day {_RANGE}.")
        return day


class AwareDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 time with a zone, between 1900-01-01 and 9998-12-31 (UTC)."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            moment = super()._deserialize(value, attr, data, **kwargs)
            in_utc = moment.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError(f"Give a time {_RANGE}.") from None
        if not FIRST_DAY <= in_utc.date() <= LAST_DAY:
            raise ma.ValidationError(f"Give a time {_RANGE}.")
        return moment


class RowId(ma.fields.Integer):
    """The id of a row: a whole number from 1 to 2,147,483,647."""

    def __init__(self, **kwargs):
        kwargs.setdefault("strict", False)
        super().__init__(**kwargs)
        self.validators.insert(
            0, ma.validate.Range(1, ROW_ID_MAX, error="Give an id from 1 to 2147483647.")
        )
