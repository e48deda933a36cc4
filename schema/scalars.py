"""Scalars whose parsing strawberry leaves to a slower general parser.

`DateTime` input goes through dateutil's isoparse, ~8 µs a value: every order
of a recordOrders batch carries one (placedAt). The form clients send, RFC 3339
with seconds and an explicit offset, is read by the standard library's own
`fromisoformat` (~0.3 µs) to the same instant and offset; anything else, and
anything that form does not read, still goes to strawberry's parser, with its
errors. Same name and description: the SDL does not change."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_GENERAL = DateTimeDefinition.parse_value


def parse_datetime(value: object) -> object:
    if type(value) is str and RFC3339.fullmatch(value):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:  # e.g. 24:00, or an offset of a day: the general parser decides
            pass
    assert _GENERAL is not None
    return _GENERAL(value)


DATETIME: ScalarDefinition = dataclasses.replace(DateTimeDefinition, parse_value=parse_datetime)
